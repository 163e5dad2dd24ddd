"""Fixtures for the slipway unit tests: a throw-away operations repository in tmp_path (no Docker)."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

DEPLOY_PLAYBOOK = """\
- name: Roll out
  hosts: "{{ env }}"
  gather_facts: false
  tasks:
    - name: preflight | the registry credentials reached the playbook
      ansible.builtin.assert:
        that: lookup('ansible.builtin.env', 'SLIPWAY_REGISTRY_PASSWORD') | length > 0
        quiet: true
      no_log: true
    - name: lock | take the lock
      ansible.builtin.command: "true"
      changed_when: false
    - name: start | start the idle colour
      ansible.builtin.command: "true"
      changed_when: false
    - name: record | report
      ansible.builtin.set_stats:
        aggregate: true
        data:
          slipway_results:
            - host: "{{ inventory_hostname }}"
              service: notes-api
              result: deployed
              version: "{{ version | default('v1.0.0') }}"
              previous_version: v0.9.0
              colour: green
              failed_phase: ""
              message: ""
              durations: {preflight: 0.1, lock: 0.2}
"""


def write(path: Path, text: str) -> Path:
    """Write a dedented text file, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository with envs `demo` (local connection), `remote` (SSH), `sealed` (vault-encrypted vars)."""
    root = tmp_path / "ops"
    write(root / "ansible.cfg", "[defaults]\ninventory = inventories/demo/hosts.yml\n")
    write(
        root / "inventories/demo/hosts.yml",
        """\
        all:
          children:
            demo:
              hosts:
                demo-1:
                  ansible_connection: local
                  ansible_python_interpreter: "{{ ansible_playbook_python }}"
        """,
    )
    write(
        root / "inventories/demo/group_vars/demo/main.yml",
        """\
        slipway_services:
          notes-api: {image: x/notes-api, version: v1.0.0, port: 8000, domain: notes.localhost}
          lark-service: {image: x/lark, version: v1.0.0, port: 8000, domain: lark.localhost}
        """,
    )
    write(
        root / "inventories/remote/hosts.yml",
        """\
        all:
          children:
            remote:
              vars: {ansible_user: deploy}
              hosts:
                remote-1: {ansible_host: 192.0.2.10}
        """,
    )
    write(root / "inventories/remote/group_vars/remote/main.yml", "slipway_services:\n  notes-api: {}\n")
    write(
        root / "inventories/sealed/hosts.yml",
        "all:\n  children:\n    sealed:\n      hosts:\n        sealed-1: {ansible_connection: local}\n",
    )
    write(root / "inventories/sealed/group_vars/sealed/main.yml", "slipway_services:\n  notes-api: {}\n")
    write(root / "inventories/sealed/group_vars/sealed/vault.yml", "$ANSIBLE_VAULT;1.1;AES256\n6162\n")
    for name in ("infra", "rollback", "status", "history", "unlock"):
        write(
            root / f"playbooks/{name}.yml",
            "- name: Nothing\n  hosts: localhost\n  gather_facts: false\n  tasks: []\n",
        )
    write(root / "playbooks/deploy.yml", DEPLOY_PLAYBOOK)
    (root / "scripts").mkdir()
    shutil.copy2(REPO / "scripts/vault-password.sh", root / "scripts/vault-password.sh")
    return root


@pytest.fixture
def writer() -> Callable[[Path, str], Path]:
    """The `write` helper, for tests that add files to the project."""
    return write


ROLE_LAYOUTS = {
    # docs/topology.md's three VMs, the edge listed first (the environment's first host is no app host)
    "prod": {"edge": ["prod-edge-1"], "app": ["prod-app-1"], "data": ["prod-data-1"], "monitoring": ["prod-data-1"]},
    # two app hosts: logs reads both, exec picks the first
    "wide": {"edge": ["wide-edge-1"], "app": ["wide-app-1", "wide-app-2"], "data": ["wide-data-1"],
             "monitoring": ["wide-data-1"]},
    # one VM listed in every role group: the same as one VM without groups
    "solo": {"edge": ["solo-1"], "app": ["solo-1"], "data": ["solo-1"], "monitoring": ["solo-1"]},
}


@pytest.fixture
def roles_project(project: Path) -> Path:
    """`project` plus environments whose hosts hold roles (groups <env>_edge, _app, _data, _monitoring; Ansible
    reads them for real): ROLE_LAYOUTS. The hosts use the local connection and distinct private addresses."""
    for env, layout in ROLE_LAYOUTS.items():
        names = list(dict.fromkeys(host for hosts in layout.values() for host in hosts))
        lines = ["all:", "  children:", f"    {env}:", "      vars: {ansible_connection: local}", "      children:"]
        for role, hosts in layout.items():
            lines += [f"        {env}_{role}:", "          hosts:"]
            lines += [f"            {host}: {{slipway_private_address: 10.0.1.{10 + names.index(host)}}}"
                      for host in hosts]
        write(project / f"inventories/{env}/hosts.yml", "\n".join(lines) + "\n")
        write(project / f"inventories/{env}/group_vars/{env}/main.yml",
              "slipway_services:\n  notes-api: {image: x/notes-api, version: v1.0.0, port: 8000, "
              "domain: notes.localhost}\n")
    return project
