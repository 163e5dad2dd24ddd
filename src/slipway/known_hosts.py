"""The host key check before a run: every SSH host of the environment has a pinned key where ssh will look.

- The hosts come from Ansible's own inventory code (slipway.inventory_hosts, in a child process run in the
  repository with the run's environment and the vault password): `ansible_host`, `ansible_port`,
  `ansible_user` and the ssh arguments are those the run will use, templates and vaulted variables resolved.
- ssh decides where to look: `ssh -G` (no connection) with the run's ssh arguments, port and user reports the
  name it checks (`HostKeyAlias`, else the host name, as `[host]:port` when the port is not 22) and its
  files (`UserKnownHostsFile`, by default ~/.ssh/known_hosts and known_hosts2 of the user's home in the
  password database, and `GlobalKnownHostsFile`, /etc/ssh/ssh_known_hosts and ssh_known_hosts2).
- `ssh-keygen -F <name> -f <file>` looks the name up in each file, hashed entries included.

Reading the inventory with Ansible costs a second (importing Ansible), so an environment whose hosts.yml gives
every host a literal connection other than SSH (local, docker), with no variables file that could change it, is
not read again: it has no host key to check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slipway.exitcodes import InputError
from slipway.runner import BASE_ENV, RUNNER_PREFIXES, child_path
from slipway.validation import Environment

DEFAULT_PORT = 22
TIMEOUT = 120  # seconds for reading the inventory (vars plugins, lookups); ssh -G and ssh-keygen take 20
PINNING = "(the deploy workflows write it from the SSH_KNOWN_HOSTS secret). Host key checking stays on."
# The child runs `python -m <module>` of THIS slipway (its output's keys are this code's), also when another one is
# installed in the interpreter (a checkout run with PYTHONPATH, which the child's environment does not carry): the
# directory holding this package goes first on the child's sys.path unless it is there already.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
CHILD = (
    "import runpy, sys; root = sys.argv.pop(1); module = sys.argv.pop(1)\n"
    "if root not in sys.path: sys.path.insert(0, root)\n"
    "runpy.run_module(module, run_name='__main__', alter_sys=True)"
)


@dataclass(frozen=True)
class Target:
    """One inventory host as the run will reach it."""

    name: str
    ssh: bool
    address: str | None = None
    port: int | None = None
    user: str | None = None
    ssh_args: tuple[str, ...] = ()
    problem: str | None = None  # why its address cannot be known before the run


@dataclass(frozen=True)
class Lookup:
    """What ssh checks for a target: the name it looks up and the files it reads."""

    name: str
    files: tuple[Path, ...]


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The run's environment without its secrets (runner.child_environment's allow-list and settings)."""
    env = {k: v for k, v in environ.items() if k.startswith(RUNNER_PREFIXES) or k in BASE_ENV}
    env["PATH"] = child_path(environ.get("PATH"))
    env["ANSIBLE_CACHE_PLUGIN"] = "ansible.builtin.memory"
    env.pop("ANSIBLE_CACHE_PLUGIN_CONNECTION", None)
    env.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)  # the password comes on stdin
    env["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "True"  # an inventory Ansible cannot parse is an error, not 0 hosts
    env["ANSIBLE_NOCOLOR"] = "1"
    return env


def _target(item: Mapping[str, Any]) -> Target:
    port = item.get("port")
    return Target(
        name=str(item["name"]),
        ssh=bool(item.get("ssh")),
        address=str(item["address"]) if item.get("address") is not None else None,
        port=int(port) if isinstance(port, int) else None,
        user=str(item["user"]) if item.get("user") is not None else None,
        ssh_args=tuple(str(a) for a in item.get("ssh_args") or ()),
        problem=str(item["problem"]) if item.get("problem") else None,
    )


@dataclass(frozen=True)
class InventoryRead:
    """What a child (slipway.inventory_hosts, or one built on it) reports of inventories/<env>/hosts.yml."""

    hosts: list[dict[str, Any]]  # per host of group <env>, what the child module reports
    groups: dict[str, list[str]]  # Ansible's `groups`: each group's hosts, in inventory order


def inventory_items(
    module: str, project: Path, env: str, environ: Mapping[str, str], vault_password: str | None
) -> list[dict[str, Any]]:
    """What child `module` (slipway.inventory_hosts, or one built on it) reports for each host of
    inventories/<env>/hosts.yml (group <env>), read with Ansible's own inventory; InputError if it cannot."""
    return read_inventory(module, project, env, environ, vault_password).hosts


def read_inventory(
    module: str, project: Path, env: str, environ: Mapping[str, str], vault_password: str | None
) -> InventoryRead:
    """inventories/<env>/hosts.yml read by child `module` with Ansible's own inventory: its hosts and groups;
    InputError if it cannot be read."""
    where = f"inventories/{env}"
    try:
        done = subprocess.run(  # noqa: S603 - this interpreter, a module of this package
            [sys.executable, "-c", CHILD, str(PACKAGE_ROOT), module, f"{where}/hosts.yml", env],
            cwd=project,
            env=child_environment(environ),
            input=vault_password or "",
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError(f"{where} cannot be read with Ansible's inventory ({exc.__class__.__name__})") from exc
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        said = [line for line in done.stderr.splitlines() if line.startswith("slipway-inventory: ")]
        why = said[-1].removeprefix("slipway-inventory: ") if said else f"exit status {done.returncode}"
        raise InputError(f"{where} cannot be read with Ansible's inventory: {why}; fix the inventory")
    found = json.loads(lines[-1])
    groups = found.get("groups") or {}
    return InventoryRead(list(found["hosts"]), {str(k): [str(h) for h in v] for k, v in groups.items()})


def read_targets(project: Path, env: str, environ: Mapping[str, str], vault_password: str | None) -> list[Target]:
    """The hosts of inventories/<env>/hosts.yml (group <env>) as Ansible reads them; InputError if it cannot."""
    return [_target(item) for item in inventory_items("slipway.inventory_hosts", project, env, environ, vault_password)]


def _run(argv: Sequence[str], environ: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # noqa: S603 - ssh / ssh-keygen with arguments from the inventory, no shell
            list(argv),
            env=child_environment(environ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError(f"cannot check host keys: {argv[0]} is not usable ({exc.__class__.__name__})") from exc


def ssh_lookup(target: Target, environ: Mapping[str, str]) -> Lookup:
    """The name ssh checks for `target` and the known_hosts files it reads (ssh -G: nothing is connected)."""
    argv = ["ssh", "-G", *target.ssh_args]
    if target.port is not None:
        argv += ["-p", str(target.port)]
    if target.user:
        argv += ["-l", target.user]
    done = _run([*argv, "--", str(target.address)], environ)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise InputError(f"{target.name}: ssh -G cannot read its ssh settings: {why[:300]}")
    settings: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        settings[key.lower()] = value.split()
    alias = " ".join(settings.get("hostkeyalias", []))
    aliased = bool(alias) and alias != "none"  # ssh looks the alias up as it is, without the port
    host = alias if aliased else " ".join(settings.get("hostname", [str(target.address)]))
    port = int((settings.get("port") or [str(DEFAULT_PORT)])[0])
    name = host if aliased or port == DEFAULT_PORT else f"[{host}]:{port}"
    files = [
        Path(f)
        for key in ("userknownhostsfile", "globalknownhostsfile")
        for f in settings.get(key, [])
        if f != "none"
    ]
    return Lookup(name, tuple(files))


def pinned(lookup: Lookup, environ: Mapping[str, str]) -> bool:
    """ssh-keygen finds a key for the name in one of the files (hashed entries too)."""
    for path in lookup.files:
        if path.is_file():
            done = _run(["ssh-keygen", "-F", lookup.name, "-f", str(path)], environ)
            if done.returncode == 0 and done.stdout.strip():
                return True
    return False


def _without_ssh(env: Environment) -> bool:
    """hosts.yml names, for every host, literally, a connection that is not SSH, and no file of group_vars/ or
    host_vars/ mentions a connection or holds vault data (which could)."""
    if not env.hosts or any(h.uses_ssh or "{" in h.connection for h in env.hosts):
        return False
    for directory in (env.directory / "group_vars", env.directory / "host_vars"):
        for path in directory.rglob("*") if directory.is_dir() else ():
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
                if "connection" in text or "$ANSIBLE_VAULT" in text:
                    return False
    return True


def check_host_keys(env: Environment, environ: Mapping[str, str], vault_password: str | None) -> None:
    """Refuse a run with an SSH host whose address is unknown before the run, or whose key is not pinned."""
    if _without_ssh(env):
        return
    project = env.directory.parent.parent
    targets = [t for t in read_targets(project, env.name, environ, vault_password) if t.ssh]
    unresolved = [f"{t.name}: {t.problem}" for t in targets if t.problem]
    if unresolved:
        raise InputError(
            f"{'; '.join(unresolved)}; so its host key cannot be checked before the run. Make it an address or "
            "a template of inventory variables (vault included) and environment lookups, not of facts"
        )
    missing: list[tuple[Target, Lookup]] = []
    for target in targets:
        lookup = ssh_lookup(target, environ)
        if not pinned(lookup, environ):
            missing.append((target, lookup))
    if missing:
        names = ", ".join(f"{t.name} ({lookup.name})" for t, lookup in missing)
        files = sorted({str(f) for _, lookup in missing for f in lookup.files})
        raise InputError(
            f"no pinned host key for {names} in any of {', '.join(files) or 'no known_hosts file'} (the files "
            f"ssh reads, from ssh -G); add the verified keys there {PINNING}"
        )
