"""A stream to a host's shell for `slipway logs` (ansible-runner's task results cannot stream a `--follow`).

The transport is built from the host's connection variables as Ansible itself reads them (slipway.connection_vars,
in a child process, like the known_hosts check), so it reaches the host the way the playbooks do:

- ssh (`ansible_connection: ssh`, the default): `ssh` with the inventory's address, `ansible_port`,
  `ansible_user`, `ansible_ssh_private_key_file` and ssh arguments (ssh_args, ssh_common_args, ssh_extra_args),
  plus BatchMode and StrictHostKeyChecking=yes: the host key must be pinned (the CLI checked it as ssh will), a
  password is never asked for. SLIPWAY_SSH_PRIVATE_KEY goes to a private ssh-agent (ssh-add reads it on stdin;
  it never touches the disk), as ansible-runner hands it to Ansible; without it, the caller's own agent is used.
- `community.docker.docker` (the local demo host, Molecule): `docker [ansible_docker_extra_args] exec -i
  [-u ansible_user] <container>`.
- `local`: the command runs on this machine.

Every playbook becomes root (`become: true`); so does the transport: nothing when the connecting user is root
(or become_user), else `sudo -n -u <become_user> --` (passwordless sudo; a become password or another become
method is refused with what to change, before any connection). The remote command is the host program's `logs`
(`slipway-release --expect-build <this build> ... logs SERVICE ...`): the host decides which container.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slipway.exitcodes import InputError
from slipway.known_hosts import InventoryRead, child_environment, read_inventory
from slipway_core import contract

SSH = frozenset(
    {"ssh", "ansible.builtin.ssh", "ansible.legacy.ssh", "paramiko", "paramiko_ssh", "ansible.builtin.paramiko_ssh"}
)
DOCKER = frozenset({"community.docker.docker", "docker", "community.docker.docker_api"})
LOCAL = frozenset({"local", "ansible.builtin.local", "ansible.legacy.local"})
PROGRAM = "/usr/local/sbin/slipway-release"  # app_release_command_path's default
SSH_OPTIONS = (
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=yes",
    "-o", "ConnectTimeout=10",
    "-o", "KbdInteractiveAuthentication=no",
    "-o", "PasswordAuthentication=no",
    "-o", "PreferredAuthentications=publickey",
)


@dataclass(frozen=True)
class Endpoint:
    """One host, as the transport reaches it (the connection variables Ansible would use)."""

    name: str
    connection: str
    address: str | None = None
    port: int | None = None
    user: str | None = None
    ssh_args: tuple[str, ...] = ()
    private_key_file: str | None = None
    container: str | None = None
    docker_extra_args: str | None = None
    become_method: str = "sudo"
    become_user: str = "root"
    become_password_set: bool = False
    ssh_password_set: bool = False
    command_path: str | None = None
    state_dir: str | None = None
    problem: str | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Endpoint:
        def text(key: str) -> str | None:
            value = item.get(key)
            return str(value) if value not in (None, "") else None

        port = item.get("port")
        return cls(
            name=str(item["name"]),
            connection=str(item.get("connection") or "ssh"),
            address=text("address"),
            port=port if isinstance(port, int) and not isinstance(port, bool) else None,
            user=text("user"),
            ssh_args=tuple(str(a) for a in item.get("ssh_args") or ()),
            private_key_file=text("private_key_file"),
            container=text("container"),
            docker_extra_args=text("docker_extra_args"),
            become_method=text("become_method") or "sudo",
            become_user=text("become_user") or "root",
            become_password_set=item.get("become_password_set") is True,
            ssh_password_set=item.get("ssh_password_set") is True,
            command_path=text("command_path"),
            state_dir=text("state_dir"),
            problem=text("problem"),
        )


def read_hosts(project: Path, env: str, environ: Mapping[str, str], vault_password: str | None) -> InventoryRead:
    """inventories/<env> as Ansible reads it, each host with its connection variables (slipway.connection_vars), and
    its groups (slipway.app_hosts reads the roles from them); InputError if it cannot be read."""
    return read_inventory("slipway.connection_vars", project, env, environ, vault_password)


def endpoints(found: InventoryRead) -> list[Endpoint]:
    return [Endpoint.from_item(item) for item in found.hosts]


def read_endpoints(project: Path, env: str, environ: Mapping[str, str], vault_password: str | None) -> list[Endpoint]:
    """The hosts of inventories/<env> as Ansible reads them (slipway.connection_vars); InputError if it cannot."""
    return endpoints(read_hosts(project, env, environ, vault_password))


def check(endpoint: Endpoint) -> None:
    """Refuse, before any connection, a host this transport cannot reach as Ansible would."""
    name = endpoint.name
    if endpoint.problem:
        raise InputError(f"{name}: {endpoint.problem}; make it an address or a template of inventory variables")
    if endpoint.connection not in SSH | DOCKER | LOCAL:
        raise InputError(
            f"{name}: slipway logs reaches hosts over ssh, community.docker.docker or local, not "
            f"{endpoint.connection!r}; run `docker logs` on the host, or use slipway status"
        )
    if endpoint.connection in SSH and endpoint.ssh_password_set:
        raise InputError(f"{name}: slipway logs uses SSH keys only (an SSH password is set for it); use a key")
    if become(endpoint) and endpoint.become_method != "sudo":
        raise InputError(
            f"{name}: slipway logs becomes {endpoint.become_user} with sudo, not {endpoint.become_method!r}; "
            "connect as root or allow the deploy user passwordless sudo"
        )
    if become(endpoint) and endpoint.become_password_set:
        raise InputError(
            f"{name}: a become password is set, and slipway logs runs `sudo -n` (passwordless sudo only); allow "
            f"{endpoint.user or 'the deploy user'} passwordless sudo for docker, or connect as root"
        )


def _connecting_user(endpoint: Endpoint) -> str | None:
    """Who the remote command runs as before become: None when the inventory does not say (ssh then logs in as
    ssh's own default user)."""
    if endpoint.connection in LOCAL:
        return "root" if os.geteuid() == 0 else None
    if endpoint.connection in DOCKER:
        return endpoint.user or "root"  # docker exec's default: the image's user; the host images run as root
    return endpoint.user


def become(endpoint: Endpoint) -> list[str]:
    """The prefix that makes the remote command run as become_user (root): none when it already does."""
    if _connecting_user(endpoint) == endpoint.become_user:
        return []
    return ["sudo", "-n", "-u", endpoint.become_user, "--"]


def remote_command(endpoint: Endpoint, build_id: str, service: str, options: Sequence[str]) -> list[str]:
    """The host program's `logs` command for this host (its paths as the inventory sets them)."""
    return [
        *become(endpoint),
        endpoint.command_path or PROGRAM,
        "--expect-build",
        build_id,
        "--root",
        endpoint.state_dir or contract.STATE_ROOT,
        "logs",
        service,
        *options,
    ]


def argv(endpoint: Endpoint, remote: Sequence[str]) -> list[str]:
    """The local command line that runs `remote` on the host, its stdin and output connected."""
    if endpoint.connection in SSH:
        out = ["ssh", *endpoint.ssh_args, *SSH_OPTIONS]
        if endpoint.private_key_file:
            out += ["-o", f"IdentityFile={endpoint.private_key_file}"]
        if endpoint.port is not None:
            out += ["-p", str(endpoint.port)]
        if endpoint.user:
            out += ["-l", endpoint.user]
        return [*out, "--", str(endpoint.address or endpoint.name), shlex.join(remote)]
    if endpoint.connection in DOCKER:
        extra = shlex.split(endpoint.docker_extra_args or "")
        user = ["-u", endpoint.user] if endpoint.user else []
        return ["docker", *extra, "exec", "-i", *user, str(endpoint.container or endpoint.name), *remote]
    return list(remote)


@contextlib.contextmanager
def ssh_agent(key: str | None, environ: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """The environment of the transport's processes: the run's (no secrets), with an ssh-agent holding `key` when
    one is given (started here, in a private directory, and stopped afterwards), else the caller's own agent."""
    env = child_environment(environ)
    if not key:
        if environ.get("SSH_AUTH_SOCK"):
            env["SSH_AUTH_SOCK"] = environ["SSH_AUTH_SOCK"]
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="slipway-agent-") as directory:
        sock = str(Path(directory) / "agent.sock")
        agent = subprocess.Popen(  # noqa: S603 - ssh-agent from PATH, in the foreground (-D)
            ["ssh-agent", "-D", "-a", sock],  # noqa: S607
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        try:
            env["SSH_AUTH_SOCK"] = sock
            for _ in range(100):  # the socket appears within a few ms
                if Path(sock).exists() or agent.poll() is not None:
                    break
                time.sleep(0.05)
            added = subprocess.run(
                ["ssh-add", "-q", "-"],  # noqa: S607 - the key on stdin, never a file
                input=key if key.endswith("\n") else key + "\n",
                env=env, capture_output=True, text=True, timeout=20, check=False,
            )
            if added.returncode != 0:
                why = (added.stderr.strip().splitlines() or ["no output"])[-1]
                raise InputError(f"ssh-add refused SLIPWAY_SSH_PRIVATE_KEY: {why[:200]}")
            yield env
        finally:
            agent.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                agent.wait(timeout=5)
