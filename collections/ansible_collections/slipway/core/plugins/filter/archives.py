"""The size of an image archive the controller ships (app_release_image_archives), for the host program's free-disk
check before the copy (slipway_core.host.disk: the archive's bytes and its unpacked bytes, from a gzip trailer)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.slipway.core.plugins.plugin_utils.core import NO_CORE

try:
    from slipway_core.host import disk as _disk
except ImportError:  # said at the first use, naming the fix
    _disk = None  # type: ignore[assignment]

DOCUMENTATION = """
name: image_archive_sizes
short_description: The bytes and unpacked bytes of a service's image archive on the controller
description:
  - Takes app_release_image_archives ({service name, path on the controller}) and returns archive_bytes and
    archive_unpacked_bytes of the service's archive; both 0 when the service has none or the file is missing
    (the copy task then reports it).
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


def image_archive_sizes(archives: Any, service: str) -> dict[str, int]:
    if not isinstance(archives, Mapping):
        raise AnsibleFilterError("image_archive_sizes: give app_release_image_archives, a dict of paths by service")
    if _disk is None:
        raise AnsibleFilterError(NO_CORE)
    path = archives.get(service)
    return _disk.archive_sizes(str(path)) if path else {"archive_bytes": 0, "archive_unpacked_bytes": 0}


class FilterModule:
    """Filters of the image archives the controller ships."""

    def filters(self) -> dict[str, Any]:
        return {"image_archive_sizes": image_archive_sizes}
