"""The size of an image archive the controller ships (app_release_image_archives), for the host program's free-disk
check before the copy (slipway_core/host/disk.py, docs/rollout.md "Free disk").

Self-contained on purpose: it only reads a file on the controller, and needs nothing of the host package (a
controller whose slipway package is older than its collection still measures). Its rule is disk.unpacked_size's:
tests/plugins/test_archives_filter.py checks that both give the same numbers for the same files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

GZIP_MAGIC = b"\x1f\x8b"
OTHER_COMPRESSION = (b"\xfd7zXZ\x00", b"BZh", b"\x28\xb5\x2f\xfd")  # xz, bzip2, zstd
OTHER_RATIO = 4

DOCUMENTATION = """
name: image_archive_sizes
short_description: The bytes and unpacked bytes of a service's image archive on the controller
description:
  - Takes app_release_image_archives ({service name, path on the controller}) and returns archive_bytes and
    archive_unpacked_bytes of the service's archive (a plain tar, its size; gzip, the size its trailer records;
    xz, bzip2, zstd, 4 times the file); both 0 when the service has none or the file is missing (the copy task then
    reports it).
options:
  _input:
    description: The archives by service name.
    type: dict
    required: true
  service:
    description: The service rolled out.
    type: str
    required: true
"""


def unpacked_size(path: str) -> int:
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(6)
        if head.startswith(GZIP_MAGIC) and size >= 18:
            handle.seek(-4, os.SEEK_END)
            isize = int.from_bytes(handle.read(4), "little")  # the size modulo 2**32
            while isize < size:
                isize += 1 << 32
            return isize
    return size * OTHER_RATIO if any(head.startswith(magic) for magic in OTHER_COMPRESSION) else size


def image_archive_sizes(archives: Any, service: str) -> dict[str, int]:
    if not isinstance(archives, Mapping):
        raise AnsibleFilterError("image_archive_sizes: give app_release_image_archives, a dict of paths by service")
    path = archives.get(service)
    try:
        return {"archive_bytes": os.path.getsize(str(path)), "archive_unpacked_bytes": unpacked_size(str(path))}
    except (OSError, TypeError):
        return {"archive_bytes": 0, "archive_unpacked_bytes": 0}


class FilterModule:
    """Filters of the image archives the controller ships."""

    def filters(self) -> dict[str, Any]:
        return {"image_archive_sizes": image_archive_sizes}
