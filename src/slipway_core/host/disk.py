"""Free disk before an image arrives: a deploy that would fill the host's disk is refused with the numbers.

A full disk during a deploy hurts more than the deploy: PostgreSQL, Redis and the live colour write to the same
disk on a one-VM host, and a `docker load` that runs out of space leaves a partial image behind. So before the
controller copies an image archive (`begin`) and again before the image step loads or pulls it, the free space is
compared with what the image needs:

- Docker's data root (`docker info` DockerRootDir, statvfs): LOAD_FACTOR x the archive's unpacked size (a `docker
  save` tar; for a gzipped one, the size its gzip trailer records) plus the margin. `docker load` (moby 20.10 and
  later, tarexport) first unpacks the whole archive into <root>/tmp, then extracts each layer into the storage
  driver's directory, then removes the unpacked copy: at its peak the archive is on that disk twice.
  Measured with Docker 20.10 and overlay2 on a tmpfs data root: a 215 MiB archive of the sample service peaked at
  2.06x (the unpacked copy, plus the extracted layers at 1.06x: files round up to whole pages); 2.2 leaves room for
  images with more small files. molecule/full_stack/tests/test_disk_check.py loads that archive into a data root
  with exactly 2.2x free.
- A pull: PULL_FACTOR x the image's compressed size, read from its registry's manifest in the pull's own login
  session (registry.py), plus the margin; when the registry does not say, the margin alone, and the refusal says
  why the size is not known.
- The upload directory (`begin`, before the controller copies the archive): the archive's size plus the margin; on
  the same filesystem as the data root, both needs add up.

The margin (`app_release_disk_margin_mb`) is what must stay free once the image is in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable

from slipway_core.host.docker import Docker
from slipway_core.host.registry import PULL_FACTOR
from slipway_core.host.run import Failed

MIB = 1024 * 1024
LOAD_FACTOR = 2.2  # docker load's peak use on the data root / the archive's unpacked size (measured 2.06)
GZIP_MAGIC = b"\x1f\x8b"
OTHER_COMPRESSION = (b"\xfd7zXZ\x00", b"BZh", b"\x28\xb5\x2f\xfd")  # xz, bzip2, zstd: docker load reads them too
OTHER_RATIO = 4  # their unpacked size is not recorded cheaply: assumed this many times the file
DEFAULT_MARGIN_MB = 1024


def free_space(path: str) -> int:
    """Bytes an unprivileged writer may still use on the filesystem of `path` (df's Avail)."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def filesystem(path: str) -> int:
    """The device of the filesystem `path` is on (two paths with the same one share their free space)."""
    return os.stat(path).st_dev


def unpacked_size(path: str) -> tuple[int, bool]:
    """The size of an image archive once unpacked, and whether that is an estimate. A plain tar: its size. Gzip:
    the trailer's ISIZE (the size modulo 2**32: the smallest such size not below the file's). xz, bzip2, zstd:
    OTHER_RATIO times the file (an estimate)."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(6)
        if head.startswith(GZIP_MAGIC) and size >= 18:
            handle.seek(-4, os.SEEK_END)
            isize = int.from_bytes(handle.read(4), "little")
            while isize < size:
                isize += 1 << 32
            return isize, False
    if any(head.startswith(magic) for magic in OTHER_COMPRESSION):
        return size * OTHER_RATIO, True
    return size, False


def archive_sizes(path: str) -> dict[str, int]:
    """What the controller puts in the release about an archive it ships: its bytes and its unpacked bytes (0, 0 when
    the file is missing: the copy reports that)."""
    try:
        return {"archive_bytes": os.path.getsize(path), "archive_unpacked_bytes": unpacked_size(path)[0]}
    except OSError:
        return {"archive_bytes": 0, "archive_unpacked_bytes": 0}


def margin(spec: dict[str, Any]) -> int:
    """The release's disk margin in bytes (`disk_margin_mb`, a whole number of MiB, 0 or more). The role's
    argument_specs refuse a bad value before any host is touched; a hand-made release is refused here (exit 1: the
    lock this run took is released)."""
    raw = spec.get("disk_margin_mb", DEFAULT_MARGIN_MB)
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = -1
    if value < 0 or isinstance(raw, bool):
        raise Failed(
            "preflight",
            f"disk_margin_mb (app_release_disk_margin_mb) must be a whole number of MiB, 0 or more, not {raw!r}; "
            "nothing was changed",
        )
    return value * MIB


def whole(value: Any) -> int:
    """A size the role templated (an int, or its text; 0 when empty or not a number)."""
    text = str(value or 0).strip()
    return int(text) if text.isdigit() else 0


def mib(size: float) -> str:
    return f"{size / MIB:,.0f} MiB"


@dataclass
class Need:
    """What one filesystem must have free: its parts (what, bytes), the last one the margin."""

    path: str
    parts: list[tuple[str, int]]

    @property
    def total(self) -> int:
        return sum(size for _, size in self.parts)

    def short(self, free: int) -> str:
        parts = " + ".join(what for what, _ in self.parts)
        return f"needs {mib(self.total)} on {self.path} ({parts}), {mib(free)} free"


def docker_root(docker: Docker) -> str | None:
    """Docker's data root on this machine, or None when the engine is elsewhere or does not say."""
    if os.environ.get("DOCKER_HOST", "unix://").split("://", 1)[0] != "unix":
        return None
    root = docker.root_dir()
    return root if root and os.path.isdir(root) else None


def refuse_short(needs: Iterable[Need], what: str, phase: str) -> None:
    """Raise Failed(phase) naming every filesystem that lacks the space its need asks for."""
    short = []
    for need in needs:
        free = free_space(need.path)
        if free < need.total:
            short.append(need.short(free))
    if short:
        raise Failed(
            phase,
            f"not enough free disk for {what}: {'; '.join(short)}. Free space (`docker image prune`, `docker "
            "system df` shows what is reclaimable; old logs and backups) or lower app_release_disk_margin_mb. "
            "Nothing was changed; the live release keeps serving.",
        )


def image_needs(docker: Docker, spec: dict[str, Any], unpacked: int, estimated: bool) -> list[Need]:
    """The data root's need for an image of `unpacked` bytes: [] when Docker's data root is not here."""
    root = docker_root(docker)
    if root is None:
        return []
    load = int(unpacked * LOAD_FACTOR)
    what = f"image {mib(unpacked)}{' (estimated)' if estimated else ''} x {LOAD_FACTOR:g} while loading = {mib(load)}"
    return [Need(root, [*([(what, load)] if unpacked else []), margin_part(spec)])]


def margin_part(spec: dict[str, Any]) -> tuple[str, int]:
    size = margin(spec)
    return f"margin {mib(size)}", size


def check_upload(docker: Docker, upload: str, spec: dict[str, Any]) -> None:
    """Before the controller copies an archive to `upload` (begin, before the lock): when the release ships one and
    the host lacks the image, room for the copy and for loading it."""
    size, unpacked = whole(spec.get("archive_bytes")), whole(spec.get("archive_unpacked_bytes"))
    if not size or docker.image_id(spec["image_ref"]) is not None:
        return
    directory = os.path.dirname(upload)  # the store made it; else its filesystem is its nearest parent's
    while not os.path.isdir(directory) and os.path.dirname(directory) != directory:
        directory = os.path.dirname(directory)
    copy = Need(directory, [(f"archive {mib(size)}", size), margin_part(spec)])
    needs = image_needs(docker, spec, unpacked, False)
    if needs and filesystem(needs[0].path) == filesystem(directory):  # one disk: the copy and the load add up
        needs = [Need(needs[0].path, [copy.parts[0], *needs[0].parts])]
    else:
        needs.insert(0, copy)
    refuse_short(needs, f"the image archive of {spec['image_ref']}", "image")


def check_image(docker: Docker, archive: str, spec: dict[str, Any]) -> None:
    """Before the image step loads `archive` (the controller's upload)."""
    unpacked, estimated = unpacked_size(archive)
    refuse_short(image_needs(docker, spec, unpacked, estimated), f"loading {spec['image_ref']}", "image")


def check_pull(docker: Docker, spec: dict[str, Any], compressed: int, unknown: str) -> None:
    """Before the image step pulls: `compressed` bytes from the registry's manifest, or 0 and why not."""
    root = docker_root(docker)
    if root is None:
        return
    ref = spec["image_ref"]
    if not compressed:
        refuse_short([Need(root, [margin_part(spec)])], f"pulling {ref} (its size is not known: {unknown})", "image")
        return
    need = compressed * PULL_FACTOR
    what = f"image {mib(compressed)} compressed (its registry's manifest) x {PULL_FACTOR:g} while pulling = {mib(need)}"
    refuse_short([Need(root, [(what, need), margin_part(spec)])], f"pulling {ref}", "image")
