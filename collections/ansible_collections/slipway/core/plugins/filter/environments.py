"""The environments of a Slipway project: one directory with a hosts.yml under inventories/.

Used by playbooks/preflight.yml to refuse an unknown `-e env=` before any host is touched. A filter, not the
`find` module, so the check costs no module run (every playbook starts with it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = """
name: environments
short_description: List the environments of a Slipway project
description:
  - Takes the path of the project's inventories directory and returns the sorted names of its subdirectories
    that hold a hosts.yml (one per environment).
options:
  _input:
    description: Path of the inventories directory.
    type: path
    required: true
"""


def environments(inventories: Any) -> list[str]:
    root = Path(str(inventories))
    if not root.is_dir():
        raise AnsibleFilterError(f"environments: {root} is not a directory (expected the project's inventories/)")
    return sorted(entry.name for entry in root.iterdir() if (entry / "hosts.yml").is_file())


class FilterModule:
    """Filters of the project layout."""

    def filters(self) -> dict[str, Any]:
        return {"environments": environments}
