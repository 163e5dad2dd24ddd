"""`slipway logs` over a real SSH connection (issue 14, item 12): the transport slipway.logs_transport builds from
Ansible's reading of the inventory (address, user, ssh arguments with the pinned known_hosts file, the inventory's
app_release_command_path), SLIPWAY_SSH_PRIVATE_KEY in a private ssh-agent, `sudo -n` to root, and a --follow that
Ctrl-C ends on both sides: the remote command sees its stdin close.

The "host" is a container of the test image slipway/test-sshd:bookworm (tests/images/sshd, built here when
missing) on Docker's default bridge; its host program is a stand-in script that reports what it was given and who
it runs as (the real host program's logs command is tested in tests/host and end to end in
molecule/full_stack/tests/test_operator_cli.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
IMAGE = "slipway/test-sshd:bookworm"
NAME = "slipway-logs-ssh-it"
PROGRAM = "/usr/local/bin/fake-slipway-release"
CLOSED = "/tmp/stdin-closed"  # noqa: S108 - in the test host container, written by FAKE
FAKE = """#!/bin/sh
echo "slipway-release: logs of notes-api-green (v9.9.9, live)" >&2
echo "uid=$(id -u) args=$*"
case " $* " in *" --follow "*) echo following; cat >/dev/null; echo closed > CLOSED ;; esac
"""
FAKE = FAKE.replace("CLOSED", CLOSED)
SLIPWAY = str(Path(sys.executable).parent / "slipway")

pytestmark = pytest.mark.integration


def docker(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True, check=False, timeout=300)


@dataclass(frozen=True)
class Host:
    project: Path
    key: str


@pytest.fixture(scope="module")
def ssh_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    if docker("info").returncode != 0:
        pytest.skip("no Docker engine answers")
    if docker("image", "inspect", IMAGE).returncode != 0:
        built = docker("build", "-q", "-t", IMAGE, str(PROJECT / "tests/images/sshd"))
        assert built.returncode == 0, built.stderr
    tmp = tmp_path_factory.mktemp("ssh")
    docker("rm", "-f", NAME)
    started = docker("run", "-d", "--name", NAME, IMAGE)
    assert started.returncode == 0, started.stderr
    try:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "id")], check=True)
        public = (tmp / "id.pub").read_text(encoding="utf-8")
        docker("exec", "-i", NAME, "sh", "-c", "cat > /home/deploy/.ssh/authorized_keys && "
               "chown deploy /home/deploy/.ssh/authorized_keys && chmod 0600 /home/deploy/.ssh/authorized_keys",
               stdin=public)
        docker("exec", "-i", NAME, "sh", "-c", f"cat > {PROGRAM} && chmod 0755 {PROGRAM}", stdin=FAKE)
        address = docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", NAME).stdout.strip()
        keys = ""
        for _ in range(50):  # sshd starts within a second
            keys = subprocess.run(["ssh-keyscan", "-T", "2", address], capture_output=True, text=True,
                                  check=False).stdout
            if keys.strip():
                break
            time.sleep(0.2)
        assert keys.strip(), "sshd did not answer"
        (tmp / "known_hosts").write_text(keys, encoding="utf-8")
        project = tmp / "ops"
        (project / "inventories/sshenv/group_vars/sshenv").mkdir(parents=True)
        (project / "ansible.cfg").write_text("[defaults]\ninventory = inventories/sshenv/hosts.yml\n", encoding="utf-8")
        hosts = {"all": {"children": {"sshenv": {"hosts": {"app-1": {
            "ansible_host": address, "ansible_user": "deploy",
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={tmp / 'known_hosts'}"}}}}}}
        (project / "inventories/sshenv/hosts.yml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
        (project / "inventories/sshenv/group_vars/sshenv/main.yml").write_text(yaml.safe_dump({
            "slipway_services": {"notes-api": {"image": "x/notes-api", "version": "v1.0.0", "port": 8000,
                                               "domain": "notes.localhost"}},
            "app_release_command_path": PROGRAM}), encoding="utf-8")
        yield Host(project, (tmp / "id").read_text(encoding="utf-8"))
    finally:
        docker("rm", "-f", NAME)


def environ(host: Host) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "SLIPWAY_", "SSH_AUTH_SOCK"))}
    return {**env, "SLIPWAY_SSH_PRIVATE_KEY": host.key}


def test_logs_over_ssh_run_the_inventory_program_as_root(ssh_host: Host) -> None:
    run = subprocess.run(
        [SLIPWAY, "logs", "--env", "sshenv", "--service", "notes-api", "--since", "5m", "--tail", "3",
         "--project-dir", str(ssh_host.project)],
        capture_output=True, text=True, env=environ(ssh_host), check=False, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    line = run.stdout.strip()
    assert line.startswith("uid=0 args=--expect-build "), line  # sudo -n made it root; no prefix with one host
    assert line.endswith("--root /var/lib/slipway/services logs notes-api --since 5m --tail 3"), line
    assert "slipway-release: logs of notes-api-green (v9.9.9, live)" in run.stderr
    assert ssh_host.key.splitlines()[1] not in run.stdout + run.stderr


def test_a_follow_over_ssh_ends_on_both_sides_at_ctrl_c(ssh_host: Host) -> None:
    follow = subprocess.Popen(
        [SLIPWAY, "logs", "--env", "sshenv", "--service", "notes-api", "--follow", "--project-dir",
         str(ssh_host.project)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ(ssh_host),
    )
    try:
        assert follow.stdout is not None
        first = follow.stdout.readline()
        assert "--follow --until-eof" in first, first
        assert follow.stdout.readline().strip() == "following"
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=10) == 0
    finally:
        if follow.poll() is None:
            follow.kill()
    for _ in range(20):
        if docker("exec", NAME, "cat", CLOSED).returncode == 0:
            break
        time.sleep(0.25)
    assert docker("exec", NAME, "cat", CLOSED).stdout.strip() == "closed"
    assert docker("exec", NAME, "pgrep", "-f", PROGRAM).returncode == 1  # nothing of it left on the host


def test_an_unpinned_host_is_refused_before_any_connection(ssh_host: Host, tmp_path: Path) -> None:
    hosts_file = ssh_host.project / "inventories/sshenv/hosts.yml"
    original = hosts_file.read_text(encoding="utf-8")
    hosts = yaml.safe_load(original)
    hosts["all"]["children"]["sshenv"]["hosts"]["app-1"]["ansible_ssh_common_args"] = (
        f"-o UserKnownHostsFile={tmp_path / 'empty'} -o GlobalKnownHostsFile={tmp_path / 'empty'}")
    hosts_file.write_text(yaml.safe_dump(hosts), encoding="utf-8")
    try:
        run = subprocess.run(
            [SLIPWAY, "logs", "--env", "sshenv", "--service", "notes-api", "--project-dir", str(ssh_host.project)],
            capture_output=True, text=True, env=environ(ssh_host), check=False, timeout=120,
        )
    finally:
        hosts_file.write_text(original, encoding="utf-8")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "no pinned host key for app-1" in run.stderr
