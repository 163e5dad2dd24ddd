"""Helpers shared by the scenarios' testinfra tests (importable: pytest puts molecule/ on sys.path for
molecule/conftest.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent


def run_playbook(
    playbook: str | Path, *args: str, extra_vars: dict[str, Any] | None = None, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    """Run a playbook against this scenario's instances (Molecule's own inventory), as converge does.

    `extra_vars` go through a temporary JSON file, never the command line. Output is captured so a test can
    assert on the messages it prints.
    """
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or str(
        Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory"
    )
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(PROJECT / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    cmd = ["ansible-playbook", "-i", inventory, str(playbook), *args]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as extra:
        if extra_vars is not None:
            json.dump(extra_vars, extra)
            extra.flush()
            cmd += ["--extra-vars", "@" + extra.name]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False, cwd=PROJECT)


def recap_changed(output: str, host: str) -> int:
    """The `changed=` count of `host` in a playbook's last PLAY RECAP."""
    found = re.findall(rf"{re.escape(host)}\s*:.*?changed=(\d+)", output)
    assert found, output[-3000:]
    return int(found[-1])
