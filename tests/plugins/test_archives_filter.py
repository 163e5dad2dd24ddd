"""The image_archive_sizes filter (slipway.core.image_archive_sizes): what the controller tells the host program about
an archive it will copy, so the host can refuse before the copy when its disk is short."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import load_filter

from slipway_core.host import disk

image_archive_sizes = load_filter("archives").image_archive_sizes


def test_a_gzipped_archive_gives_its_size_and_its_unpacked_size(tmp_path: Path) -> None:
    archive = tmp_path / "notes-api.tar.gz"
    archive.write_bytes(gzip.compress(b"layer" * 20_000))
    sizes = image_archive_sizes({"notes-api": str(archive)}, "notes-api")
    assert sizes == {"archive_bytes": archive.stat().st_size, "archive_unpacked_bytes": 100_000}


def test_no_archive_or_a_missing_file_gives_zero(tmp_path: Path) -> None:
    zero = {"archive_bytes": 0, "archive_unpacked_bytes": 0}
    assert image_archive_sizes({}, "notes-api") == zero
    assert image_archive_sizes({"notes-api": str(tmp_path / "gone.tar")}, "notes-api") == zero


def test_not_a_dict_fails_the_task() -> None:
    with pytest.raises(AnsibleFilterError, match="give app_release_image_archives"):
        image_archive_sizes(["a.tar"], "notes-api")


def test_the_controller_and_the_host_measure_alike(tmp_path: Path) -> None:
    """The filter's rule is the host program's (disk.unpacked_size): plain, gzip (also past 4 GiB), xz."""
    plain, packed, xz, big = (tmp_path / name for name in ("a.tar", "a.tar.gz", "a.tar.xz", "big.tar.gz"))
    plain.write_bytes(b"x" * 10_000)
    packed.write_bytes(gzip.compress(b"x" * 100_000))
    xz.write_bytes(b"\xfd7zXZ\x00" + b"\x00" * 994)
    with open(big, "wb") as handle:
        handle.write(b"\x1f\x8b" + b"\x00" * 16)
        handle.truncate(2 << 30)
        handle.seek(-4, os.SEEK_END)
        handle.write(((5 << 30) + 10 - (1 << 32)).to_bytes(4, "little"))
    for archive in (plain, packed, xz, big):
        sizes = image_archive_sizes({"s": str(archive)}, "s")
        assert sizes == disk.archive_sizes(str(archive)), archive.name
    assert image_archive_sizes({"s": str(big)}, "s")["archive_unpacked_bytes"] == (5 << 30) + 10
