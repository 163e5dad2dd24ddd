"""Issue 14, item 11: the known_hosts check reads the inventory with Ansible's own inventory API and looks keys up
the way ssh does (`ssh -G` for the files, `ssh-keygen -F` for the lookup).

ansible-runner is FAKED here (`run` records the request and replays nothing): these tests stop at the plan, which
runs the real Ansible inventory code and the real ssh/ssh-keygen, without any host. ssh expands `~` from the
password database, not $HOME, so each inventory points ssh at the test's own files with
`ansible_ssh_common_args: -o UserKnownHostsFile=... -o GlobalKnownHostsFile=...`, as an operator could.
"""

from __future__ import annotations

import io
import os
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret

from slipway import cli, inventory_hosts
from slipway.runner import EventCallback, PlaybookRun, RunnerOutcome

# a public key, not a secret
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHAK52Epise7F4VLmp//f8wnjA2mJnnkPf6uR8gujBFR"  # pragma: allowlist secret
VAULT_PW = "known-hosts-test-vault-pw"  # pragma: allowlist secret


class Recorder:
    """Stands in for ansible-runner: records that a run was asked for, reports success."""

    def __init__(self) -> None:
        self.calls: list[PlaybookRun] = []

    def __call__(self, run: PlaybookRun, on_event: EventCallback, cancelled: threading.Event) -> RunnerOutcome:
        self.calls.append(run)
        return RunnerOutcome("successful", 0, False)


def provision(project: Path, env: Mapping[str, str] | None = None) -> tuple[int, str, Recorder]:
    runner = Recorder()
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        ["provision", "--env", "remote", "--project-dir", str(project), "--no-notify"],
        environ={"PATH": os.environ["PATH"], "HOME": str(project / "home"), "SSH_AUTH_SOCK": "/x", **(env or {})},
        run=runner,
        post=lambda url, payload: None,
        streams=cli.Streams(out, err),
    )
    return code, err.getvalue(), runner


def inventory(project: Path, host_vars: str, group_vars: str = "") -> tuple[Path, Path]:
    """inventories/remote with one SSH host; returns (user known_hosts, global known_hosts), both empty."""
    user, system = project / "home/.ssh/known_hosts", project / "etc/ssh_known_hosts"
    for path in (user, system):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    args = f"-o UserKnownHostsFile={user} -o GlobalKnownHostsFile={system}"
    (project / "inventories/remote/hosts.yml").write_text(
        "all:\n  children:\n    remote:\n"
        f"      vars: {{ansible_user: deploy, ansible_ssh_common_args: '{args}'}}\n"
        f"      hosts:\n        remote-1: {{{host_vars}}}\n"
    )
    if group_vars:
        (project / "inventories/remote/group_vars/remote/extra.yml").write_text(group_vars)
    return user, system


def test_ansible_port_is_looked_up_as_host_and_port(project: Path) -> None:
    """`[host]:2222` is what ssh looks up for port 2222 (before: refused, the plain address was looked up)."""
    user, _ = inventory(project, "ansible_host: 192.0.2.10, ansible_port: 2222")
    user.write_text(f"[192.0.2.10]:2222 {KEY}\n")
    code, err, runner = provision(project)
    assert (code, len(runner.calls)) == (0, 1), err
    user.write_text(f"192.0.2.10 {KEY}\n")  # a key for port 22 is not a key for port 2222
    code, err, runner = provision(project)
    assert (code, runner.calls) == (2, [])
    assert "no pinned host key for remote-1 ([192.0.2.10]:2222)" in err


def test_global_known_hosts_file_counts(project: Path) -> None:
    """A key pinned only in the global file (/etc/ssh/ssh_known_hosts by default) is one ssh accepts."""
    _, system = inventory(project, "ansible_host: 192.0.2.10")
    system.write_text(f"192.0.2.10 {KEY}\n")
    code, err, runner = provision(project)
    assert (code, len(runner.calls)) == (0, 1), err


def test_hashed_entries_count(project: Path) -> None:
    user, _ = inventory(project, "ansible_host: 192.0.2.10, ansible_port: 2222")
    user.write_text(f"[192.0.2.10]:2222 {KEY}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(user)], check=True, capture_output=True)
    assert "192.0.2.10" not in user.read_text()
    code, err, runner = provision(project)
    assert (code, len(runner.calls)) == (0, 1), err


def test_templated_host_resolved_by_ansible_with_the_vault(project: Path) -> None:
    """ansible_host from a group variable kept in a vault-encrypted file: read with SLIPWAY_VAULT_PASSWORD."""
    vault = VaultLib([("default", VaultSecret(VAULT_PW.encode()))])
    secret = vault.encrypt("vault_remote_1_address: 192.0.2.10\n").decode()
    user, _ = inventory(project, "ansible_host: '{{ vault_remote_1_address }}'")
    (project / "inventories/remote/group_vars/remote/vault.yml").write_text(secret)
    user.write_text(f"192.0.2.10 {KEY}\n")
    code, err, runner = provision(project, {"SLIPWAY_VAULT_PASSWORD": VAULT_PW})
    assert (code, len(runner.calls)) == (0, 1), err


def test_templated_port_and_address_from_group_vars(project: Path) -> None:
    user, _ = inventory(
        project, "ansible_host: '{{ subnet }}.10', ansible_port: '{{ 2000 + 22 }}'", "subnet: 192.0.2\n"
    )
    user.write_text(f"[192.0.2.10]:2022 {KEY}\n")
    code, err, runner = provision(project)
    assert (code, len(runner.calls)) == (0, 1), err


def test_a_host_known_only_at_run_time_is_named(project: Path) -> None:
    """A template that needs facts cannot be resolved before the run: refused, saying so (not "no key")."""
    inventory(project, "ansible_host: '{{ ansible_default_ipv4.address }}'")
    code, err, runner = provision(project)
    assert (code, runner.calls) == (2, [])
    assert "remote-1: ansible_host cannot be resolved before the run" in err
    assert "ansible_default_ipv4" in err


def test_a_broken_inventory_is_refused_in_one_line(project: Path) -> None:
    inventory(project, "ansible_host: 192.0.2.10")
    (project / "inventories/remote/group_vars/remote/vault.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n6162\n")
    code, err, runner = provision(project, {"SLIPWAY_VAULT_PASSWORD": "wrong"})
    assert (code, runner.calls) == (2, [])
    assert "inventories/remote cannot be read with Ansible's inventory" in err
    assert "wrong" not in err
    assert len(err.splitlines()) <= 3


def test_the_inventory_name_is_the_address_when_no_ansible_host(project: Path) -> None:
    user, _ = inventory(project, "ansible_port: 22")
    user.write_text(f"remote-1 {KEY}\n")
    code, err, runner = provision(project)
    assert (code, len(runner.calls)) == (0, 1), err


def test_a_connection_set_in_host_vars_is_seen(project: Path) -> None:
    """hosts.yml says local, host_vars say ssh: Ansible connects over SSH, so the key is checked (the hand parser
    read hosts.yml only and let the run start without a pinned key)."""
    inventory(project, "ansible_connection: local, ansible_host: 192.0.2.10")
    (project / "inventories/remote/host_vars").mkdir()
    (project / "inventories/remote/host_vars/remote-1.yml").write_text("ansible_connection: ssh\n")
    code, err, runner = provision(project)
    assert (code, runner.calls) == (2, [])
    assert "no pinned host key for remote-1 (192.0.2.10)" in err


@pytest.mark.filterwarnings("ignore:AnsibleCollectionFinder has already been configured")  # other tests set it up
def test_inventory_hosts_in_process(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """slipway.inventory_hosts (the child's code) run here, for what it reports per host."""
    inventory(project, "ansible_host: '{{ subnet }}.10', ansible_port: 2222", "subnet: 192.0.2\n")
    hosts = project / "inventories/remote/hosts.yml"
    hosts.write_text(
        hosts.read_text()
        + "        remote-2: {ansible_connection: local}\n"
        + "        remote-3: {ansible_host: '{{ ansible_facts.eth0 }}'}\n"
        + "        remote-4: {ansible_port: twenty}\n"
    )
    monkeypatch.chdir(project)
    got = {h["name"]: h for h in inventory_hosts.read("inventories/remote/hosts.yml", "remote", "")}
    assert (got["remote-1"]["address"], got["remote-1"]["port"], got["remote-1"]["user"]) == (
        "192.0.2.10", 2222, "deploy"
    )
    assert "-o" in got["remote-1"]["ssh_args"]
    assert (got["remote-2"]["ssh"], got["remote-2"]["connection"]) == (False, "local")
    assert got["remote-3"]["problem"].startswith("ansible_host cannot be resolved before the run")
    assert got["remote-4"]["problem"] == "ansible_port 'twenty' is not a port number"
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert inventory_hosts.main(["inventories/nope/hosts.yml", "nope"]) == 1
