"""Helpers of the plugin tests (pytest puts this directory on sys.path): load one of the project collection's
plugin files as a module, or run a play on localhost with the project's ansible.cfg (real ansible-playbook)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

PROJECT = Path(__file__).resolve().parents[2]
FILTERS = PROJECT / "collections/ansible_collections/slipway/core/plugins/filter"
# `ansible_collections` is a namespace package (the ansible package's collections): with the project's collections
# directory on sys.path it also holds slipway.core, so a plugin's own imports (plugin_utils) resolve as under Ansible.
if str(PROJECT / "collections") not in sys.path:
    sys.path.append(str(PROJECT / "collections"))


# A valid services-registry entry, for the filter's tests to vary.
VALID_SERVICE: dict[str, object] = {
    "image": "registry.example.com/acme/lark-service",
    "version": "v1.4.2",
    "port": 8000,
    "domain": "lark.staging.example.com",
    "postgres": True,
    "redis": True,
}


def load_filter(name: str) -> ModuleType:
    """The filter plugin file FILTERS/<name>.py, as module slipway_<name>_filter."""
    spec = importlib.util.spec_from_file_location(f"slipway_{name}_filter", FILTERS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def play(tmp_path: Path, tasks: str, *extra: str, inventory: str = "localhost,",
         env: Mapping[str, str] | None = None, hosts: str = "localhost", connection: str = "local",
         python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    """Run `tasks` on `hosts` (localhost, local connection, unless told) with the project's collections and
    ansible.cfg, and `env` over this environment."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        f"- hosts: {hosts}\n  gather_facts: false\n  connection: {connection}\n  tasks:\n"
        + textwrap.indent(textwrap.dedent(tasks), "    "),
        encoding="utf-8",
    )
    environ = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"),
               "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0", **(env or {})}
    return subprocess.run(
        ["ansible-playbook", "-i", inventory, "-e", f"ansible_python_interpreter={python}", str(playbook), *extra],
        cwd=PROJECT, capture_output=True, text=True, env=environ, timeout=120, check=False,
    )


def dump_task(var: str, path: Path) -> str:
    """A task that writes the registered result `var` as JSON to `path`."""
    return f"""
        - name: Keep the result
          ansible.builtin.copy:
            content: "{{{{ {var} | to_json }}}}"
            dest: "{path}"
            mode: "0600"
    """


def loaded(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return data
