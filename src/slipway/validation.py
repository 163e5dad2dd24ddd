"""Checks of everything the CLI can verify before any host is touched.

Every input rule and its message is slipway_core.contract's (shared with the collection's plugins and the host
program): this module only reads the repository (environments, the services registry) and turns the contract's
InputRefused into the CLI's InputError with the message unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slipway.exitcodes import InputError
from slipway_core import contract

PLAYBOOKS = {
    "provision": "playbooks/infra.yml",
    "deploy": "playbooks/deploy.yml",
    "rollback": "playbooks/rollback.yml",
    "status": "playbooks/status.yml",
    "history": "playbooks/history.yml",
    "unlock": "playbooks/unlock.yml",
    "exec": "playbooks/exec.yml",
    "job": "playbooks/job.yml",
}


@contextmanager
def _refusals() -> Iterator[None]:
    """The contract's refusals as the CLI's InputError (exit code 2), with the contract's message as is."""
    try:
        yield
    except contract.InputRefused as exc:
        raise InputError(str(exc)) from exc


@dataclass(frozen=True)
class Host:
    """One inventory host of an environment, as far as the CLI needs it."""

    name: str
    address: str
    connection: str

    @property
    def uses_ssh(self) -> bool:
        return self.connection in {"ssh", "paramiko", "ansible.builtin.ssh", "ansible.legacy.ssh"}


@dataclass(frozen=True)
class Environment:
    """An environment: inventories/<name>/hosts.yml and its group variables."""

    name: str
    directory: Path
    hosts: tuple[Host, ...]
    services: tuple[str, ...]
    vaulted: bool  # some of its files need the vault password


def find_project_dir(start: Path) -> Path:
    """The operations repository: the nearest directory at or above `start` with ansible.cfg, inventories/."""
    for candidate in (start, *start.parents):
        if (candidate / "ansible.cfg").is_file() and (candidate / "inventories").is_dir():
            return candidate
    raise InputError(
        f"{start} is not inside a Slipway repository (no ansible.cfg and inventories/ at or above it); "
        "run slipway from the repository or pass --project-dir"
    )


def known_envs(project: Path) -> list[str]:
    """The environments: inventories/<name>/hosts.yml (the contract says which names can be one)."""
    return contract.env_names(p.parent.name for p in (project / "inventories").glob("*/hosts.yml"))


def check_env_name(project: Path, name: str) -> str:
    with _refusals():
        return contract.check_env_name(name, known_envs(project))


def check_service_name(name: str) -> str:
    with _refusals():
        return contract.check_service_name(name)


def check_version(version: str) -> str:
    """A release to deploy: vMAJOR.MINOR.PATCH or another immutable image tag."""
    with _refusals():
        return contract.check_version(version)


class _VaultTolerantLoader(yaml.SafeLoader):
    """Reads inventory YAML with Ansible's tags (!vault, !unsafe) as opaque strings."""


def _opaque(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return "!vault" if node.tag == "!vault" else str(loader.construct_scalar(node))  # type: ignore[arg-type]


_VaultTolerantLoader.add_constructor("!vault", _opaque)
_VaultTolerantLoader.add_constructor("!unsafe", _opaque)


def _read_yaml(path: Path) -> tuple[Any, bool]:
    """The data of a YAML file and whether it is (or contains) vault-encrypted data."""
    text = path.read_text(encoding="utf-8")
    if text.startswith("$ANSIBLE_VAULT"):
        return None, True
    try:
        data = yaml.load(text, Loader=_VaultTolerantLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc.__class__.__name__}); fix the file") from exc
    return data, "!vault" in text


def _collect_hosts(group: Mapping[str, Any], inherited: Mapping[str, Any], out: dict[str, Host]) -> None:
    group_vars = {**inherited, **(group.get("vars") or {})}
    for name, host_vars in (group.get("hosts") or {}).items():
        merged = {**group_vars, **(host_vars or {})}
        out[str(name)] = Host(
            name=str(name),
            address=str(merged.get("ansible_host", name)),
            connection=str(merged.get("ansible_connection", "ssh")),
        )
    for child in (group.get("children") or {}).values():
        _collect_hosts(child or {}, group_vars, out)


def load_environment(project: Path, name: str) -> Environment:
    """Read an environment's hosts and services registry (vault-encrypted files are noted, not read)."""
    directory = project / "inventories" / check_env_name(project, name)
    inventory, vaulted = _read_yaml(directory / "hosts.yml")
    hosts: dict[str, Host] = {}
    if isinstance(inventory, Mapping):
        _collect_hosts(inventory.get("all") or {}, {}, hosts)
    services: set[str] = set()
    for path in sorted((directory / "group_vars").glob(f"{name}/*.y*ml")) + sorted(
        (directory / "group_vars").glob(f"{name}.y*ml")
    ):
        data, file_vaulted = _read_yaml(path)
        vaulted = vaulted or file_vaulted
        if isinstance(data, Mapping) and isinstance(data.get("slipway_services"), Mapping):
            services.update(str(s) for s in data["slipway_services"])
    for path in sorted((directory / "host_vars").rglob("*.y*ml")):
        vaulted = vaulted or _read_yaml(path)[1]
    if not hosts:
        raise InputError(f"inventories/{name}/hosts.yml lists no hosts; add the environment's hosts there")
    return Environment(name, directory, tuple(hosts.values()), tuple(sorted(services)), vaulted)


def check_service(env: Environment, service: str) -> str:
    """A service of the environment's registry."""
    with _refusals():
        return contract.check_known_service(service, env.services, contract.registry_of(env.name))


def check_request(env: Environment, service: str | None, version: str | None, rollback: bool = False) -> None:
    """The services a command asks for (None: not given), by the rules the playbooks' preflight applies too."""
    with _refusals():
        contract.check_request(service, version, env.services, contract.registry_of(env.name), rollback=rollback)


def playbook_path(project: Path, command: str) -> Path:
    path = project / PLAYBOOKS[command]
    if not path.is_file():
        raise InputError(f"{PLAYBOOKS[command]} is missing from {project}; `slipway {command}` runs it")
    return path
