"""Free disk before the image arrives (disk.py): an archive too big, a pull with too little margin, enough space, a
bad margin; at begin (before the controller's copy) and in the image step. The filesystems are faked (free space
and device per directory); the archives are sparse files of the sizes under test."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from world import SERVICE, World

from slipway_core import contract
from slipway_core.host import disk, main
from slipway_core.host.run import Failed, Run

MIB = 1024 * 1024


class Disks:
    """Free bytes and a device number per directory (a path's filesystem is its nearest listed ancestor's)."""

    def __init__(self) -> None:
        self.free: dict[str, int] = {}
        self.device: dict[str, int] = {}

    def add(self, path: Path, free_mib: float, device: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.free[str(path)], self.device[str(path)] = int(free_mib * MIB), device

    def owner(self, path: str) -> str:
        found = [p for p in self.free if path == p or path.startswith(p + os.sep)]
        assert found, f"no fake filesystem holds {path}"
        return max(found, key=len)

    def free_space(self, path: str) -> int:
        return self.free[self.owner(path)]

    def filesystem(self, path: str) -> int:
        return self.device[self.owner(path)]


@pytest.fixture
def disks(world: World, monkeypatch: pytest.MonkeyPatch) -> Disks:
    """Docker's data root at <tmp>/docker (its own filesystem, 10 GiB free) and the state at <tmp>/state (another,
    10 GiB free); each test shrinks what it needs to."""
    fake = Disks()
    fake.add(world.tmp / "docker", 10240, 1)
    fake.add(Path(world.root), 10240, 2)
    monkeypatch.setattr(disk, "free_space", fake.free_space)
    monkeypatch.setattr(disk, "filesystem", fake.filesystem)
    monkeypatch.setattr(world.docker, "root_dir", lambda: str(world.tmp / "docker"))
    return fake


def command(  # noqa: PLR0917 - the fixtures a test has, then the command's own
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, version: str,
    run_id: str, steps: str = "", **over: Any,
) -> tuple[int, dict[str, Any]]:
    """`slipway-release begin|run SERVICE --run-id RUN [--steps STEPS]` with the release on stdin."""
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(world.spec(version, **over))))
    store = world.store()
    args = argparse.Namespace(command=name, steps=steps, service=SERVICE, run_id=run_id, plan=False, force=False,
                              start_when_ready=True, stale_after=120.0)
    code = main.run_command(world.host, store, Run(store, run_id), args)
    return code, json.loads(capsys.readouterr().out)


def ship(world: World, version: str, size_mib: int) -> str:
    """The controller's copy of an archive of `size_mib` (sparse) at the upload path; loading it gives `version`."""
    archive = world.store().paths.image_archive
    with open(archive, "wb") as handle:
        handle.truncate(size_mib * MIB)
    world.docker.archives[archive] = world.ref(version)
    return archive


@pytest.fixture
def live_v1(world: World, disks: Disks) -> World:
    """v1 live on blue; v2 in the registry (and as an archive), not on the host."""
    world.image("v1.0.0")
    world.image("v2.0.0", on_host=False)
    world.deploy("v1.0.0", "r1", disk_margin_mb=200)
    return world


def assert_nothing_changed(world: World, run_id: str) -> None:
    """The refused run left the live release serving, no lock, no new container, no image."""
    assert world.serves() == "v1.0.0"
    assert world.state()["live"]["version"] == "v1.0.0"
    assert world.lock() is None
    assert f"{SERVICE}-green" not in world.docker.boxes
    assert world.docker.image_id(world.ref("v2.0.0")) is None
    assert not [c for c in world.docker.calls if c[0] in ("load", "pull", "run")][1:], world.docker.calls
    world.assert_settled(run_id)


def test_an_archive_too_big_for_the_data_root_is_refused_with_the_numbers(
    live_v1: World, disks: Disks, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = live_v1
    begun = world.begin("v2.0.0", "r2", disk_margin_mb=200)
    archive = ship(world, "v2.0.0", 600)
    disks.free[str(world.tmp / "docker")] = 1000 * MIB  # 600 x 2.2 + 200 = 1520 MiB needed
    calls = len(world.docker.calls)

    code, answer = command(world, monkeypatch, capsys, "run", "v2.0.0", "r2", ",".join(begun["todo"]),
                           disk_margin_mb=200)

    assert code == contract.EXIT_FAILED
    assert (answer["result"], answer["failed_phase"]) == ("failed", "image")
    assert (
        f"needs 1,520 MiB on {world.tmp / 'docker'} (image 600 MiB x 2.2 while loading = 1,320 MiB + margin 200 MiB), "
        "1,000 MiB free" in answer["message"]
    )
    assert "docker image prune" in answer["message"] and "app_release_disk_margin_mb" in answer["message"]
    assert not [c for c in world.docker.calls[calls:] if c[0] in ("load", "pull", "run")]
    assert not os.path.exists(archive), "the refused archive is removed: it takes the space that is short"
    assert world.history()[-1]["failed_phase"] == "image"
    assert_nothing_changed(world, "r2")


def test_a_pull_with_less_free_than_the_margin_is_refused(
    live_v1: World, disks: Disks, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = live_v1
    begun = world.begin("v2.0.0", "r2", disk_margin_mb=200)
    assert begun["todo"][0] == "image"
    disks.free[str(world.tmp / "docker")] = 140 * MIB

    code, answer = command(world, monkeypatch, capsys, "run", "v2.0.0", "r2", ",".join(begun["todo"]),
                           disk_margin_mb=200)

    assert (code, answer["failed_phase"]) == (contract.EXIT_FAILED, "image")
    assert (
        f"not enough free disk for pulling {world.ref('v2.0.0')} (its size is not known: the fake registry has no "
        f"manifest for it): needs 200 MiB on {world.tmp / 'docker'} (margin 200 MiB), 140 MiB free" in answer["message"]
    )
    assert_nothing_changed(world, "r2")


def test_a_pull_needs_its_manifest_size_times_the_pull_factor_plus_the_margin(
    live_v1: World, disks: Disks, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The registry says 100 MiB compressed: 400 MiB while pulling + 200 MiB margin = 600 MiB. With 590 MiB free
    (the margin alone would fit) the pull is refused before it starts, naming both parts; with 610 it deploys."""
    world = live_v1
    world.docker.manifest_sizes[world.ref("v2.0.0")] = 100 * MIB
    begun = world.begin("v2.0.0", "r2", disk_margin_mb=200)
    disks.free[str(world.tmp / "docker")] = 590 * MIB

    code, answer = command(world, monkeypatch, capsys, "run", "v2.0.0", "r2", ",".join(begun["todo"]),
                           disk_margin_mb=200)

    assert (code, answer["failed_phase"]) == (contract.EXIT_FAILED, "image")
    assert (
        f"not enough free disk for pulling {world.ref('v2.0.0')}: needs 600 MiB on {world.tmp / 'docker'} (image "
        "100 MiB compressed (its registry's manifest) x 4 while pulling = 400 MiB + margin 200 MiB), 590 MiB free"
        in answer["message"]
    )
    assert ("manifest", world.ref("v2.0.0")) in world.docker.calls
    assert_nothing_changed(world, "r2")

    disks.free[str(world.tmp / "docker")] = 610 * MIB
    assert world.deploy("v2.0.0", "r3", disk_margin_mb=200)["result"] == "deployed"


@pytest.mark.parametrize("archive_mib", [0, 400], ids=["pull", "archive"])
def test_enough_space_deploys(live_v1: World, disks: Disks, archive_mib: int) -> None:
    world = live_v1
    begun = world.begin("v2.0.0", "r2", disk_margin_mb=200)
    if archive_mib:
        ship(world, "v2.0.0", archive_mib)
    disks.free[str(world.tmp / "docker")] = int(archive_mib * MIB * disk.LOAD_FACTOR) + 200 * MIB  # exactly enough

    answer = world.advance("v2.0.0", "r2", begun["todo"], disk_margin_mb=200)

    assert answer["result"] == "deployed"
    assert world.serves() == "v2.0.0"
    assert world.docker.calls[-1][0] != "load" and ("load" if archive_mib else "pull") in {
        c[0] for c in world.docker.calls
    }


@pytest.mark.parametrize("bad", ["-1", "abc", "1.5", True, -5], ids=["negative", "word", "fraction", "bool", "int"])
def test_a_bad_margin_is_refused_before_the_image(
    live_v1: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], bad: Any
) -> None:
    world = live_v1
    begun = world.begin("v2.0.0", "r2")

    code, answer = command(world, monkeypatch, capsys, "run", "v2.0.0", "r2", ",".join(begun["todo"]),
                           disk_margin_mb=bad)

    assert (code, answer["failed_phase"]) == (contract.EXIT_FAILED, "preflight")
    assert f"app_release_disk_margin_mb) must be a whole number of MiB, 0 or more, not {bad!r}" in answer["message"]
    assert_nothing_changed(world, "r2")


# ------------------------------------------------------------------------------------ begin: before the copy
def test_begin_refuses_an_archive_the_upload_directory_cannot_hold(
    live_v1: World, disks: Disks, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = live_v1
    disks.free[world.root] = 500 * MIB
    sizes: dict[str, Any] = {"archive_bytes": 600 * MIB, "archive_unpacked_bytes": 600 * MIB, "disk_margin_mb": 200}

    code, answer = command(world, monkeypatch, capsys, "begin", "v2.0.0", "r2", **sizes)

    assert (code, answer["result"], answer["failed_phase"]) == (contract.EXIT_FAILED, "failed", "image")
    upload_dir = os.path.dirname(world.store().paths.image_archive)
    assert f"needs 800 MiB on {upload_dir} (archive 600 MiB + margin 200 MiB), 500 MiB free" in answer["message"]
    assert world.history()[-1]["run_id"] == "r1", "refused before the lock: no history line"
    assert_nothing_changed(world, "r2")


def test_begin_adds_up_the_copy_and_the_load_on_one_filesystem(
    live_v1: World, disks: Disks, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = live_v1
    disks.device[world.root] = 1  # the state and Docker's data root share a disk
    disks.free[str(world.tmp / "docker")] = 1800 * MIB
    gzipped = {"archive_bytes": 300 * MIB, "archive_unpacked_bytes": 600 * MIB}
    sizes: dict[str, Any] = {**gzipped, "disk_margin_mb": 200}

    code, answer = command(world, monkeypatch, capsys, "begin", "v2.0.0", "r2", **sizes)

    assert (code, answer["failed_phase"]) == (contract.EXIT_FAILED, "image")
    assert (
        f"needs 1,820 MiB on {world.tmp / 'docker'} (archive 300 MiB + image 600 MiB x 2.2 while loading = 1,320 MiB "
        "+ margin 200 MiB), 1,800 MiB free" in answer["message"]
    )
    assert_nothing_changed(world, "r2")

    disks.free[str(world.tmp / "docker")] = 1820 * MIB
    begun = world.begin("v2.0.0", "r3", **sizes)
    assert (begun["result"], begun["upload"]) == (contract.CONTINUE, world.store().paths.image_archive)


def test_begin_checks_both_filesystems_when_they_differ(live_v1: World, disks: Disks) -> None:
    world = live_v1
    disks.free[str(world.tmp / "docker")] = 1300 * MIB
    sizes: dict[str, Any] = {"archive_bytes": 600 * MIB, "archive_unpacked_bytes": 600 * MIB, "disk_margin_mb": 200}

    with pytest.raises(Failed, match=r"needs 1,520 MiB on .*docker \(image 600 MiB x 2.2") as refused:
        world.begin("v2.0.0", "r2", **sizes)
    assert "on " + world.root not in str(refused.value), "the state's disk has room for the copy"


def test_begin_with_the_image_on_the_host_checks_nothing(live_v1: World, disks: Disks) -> None:
    world = live_v1
    world.image("v2.0.0")
    disks.free[str(world.tmp / "docker")] = 0
    assert world.begin("v2.0.0", "r2", archive_bytes=600 * MIB, disk_margin_mb=200)["result"] == contract.CONTINUE


# ---------------------------------------------------------------------------------------------- the sizes
def test_unpacked_size_of_plain_gzip_and_other_archives(tmp_path: Path) -> None:
    plain, packed, xz = tmp_path / "a.tar", tmp_path / "a.tar.gz", tmp_path / "a.tar.xz"
    plain.write_bytes(b"x" * 10_000)
    packed.write_bytes(gzip.compress(b"x" * 100_000))
    xz.write_bytes(b"\xfd7zXZ\x00" + b"\x00" * 994)
    assert disk.unpacked_size(str(plain)) == (10_000, False)
    assert disk.unpacked_size(str(packed)) == (100_000, False)
    assert disk.unpacked_size(str(xz)) == (4000, True)
    sizes = {"archive_bytes": packed.stat().st_size, "archive_unpacked_bytes": 100_000}
    assert disk.archive_sizes(str(packed)) == sizes
    assert disk.archive_sizes(str(tmp_path / "missing.tar")) == {"archive_bytes": 0, "archive_unpacked_bytes": 0}


def test_a_gzip_trailer_wraps_at_4_gib(tmp_path: Path) -> None:
    """ISIZE is the size modulo 2**32: an archive of 5 GiB + 10 bytes records 1 GiB + 10 (below the file's size)."""
    packed = tmp_path / "big.tar.gz"
    with open(packed, "wb") as handle:
        handle.write(b"\x1f\x8b" + b"\x00" * 16)
        handle.truncate(2 << 30)  # a 2 GiB compressed file
        handle.seek(-4, os.SEEK_END)
        handle.write(((5 << 30) + 10 - (1 << 32)).to_bytes(4, "little"))
    assert disk.unpacked_size(str(packed)) == ((5 << 30) + 10, False)


def test_a_docker_elsewhere_is_not_measured_here(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world.docker, "root_dir", lambda: str(world.tmp))
    assert disk.docker_root(world.docker) == str(world.tmp)
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2376")
    assert disk.docker_root(world.docker) is None


def test_an_upload_directory_not_made_yet_is_measured_on_its_parent(
    live_v1: World, disks: Disks, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = live_v1
    store = world.store()
    monkeypatch.setattr(store.paths, "image_archive", str(world.tmp / "state" / "new" / "deeper" / "image.tar"))
    disks.free[world.root] = 100 * MIB
    with pytest.raises(Failed, match=f"needs 400 MiB on {world.root} "):
        disk.check_upload(world.docker, store.paths.image_archive,
                          world.spec("v2.0.0", archive_bytes=200 * MIB, disk_margin_mb=200))
