"""Checks of everything the CLI can verify before any host is touched.

The naming rules repeat those of the services filter
(collections/ansible_collections/slipway/core/plugins/filter/services.py: NAME_RE, TAG_RE). That module
imports ansible, so it is not imported here: keep the two copies of each regular expression identical.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slipway.exitcodes import InputError

# Same as services.py NAME_RE (service names) and TAG_RE (image tags): keep them identical. Used with
# fullmatch(): with match(), `$` also accepts a trailing newline.
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# An environment is a directory name under inventories/ and a group name in the inventory.
ENV_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# A tag of only digits and dots (maybe after "v") is meant as a version: it must be vMAJOR.MINOR.PATCH.
VERSION_LIKE_RE = re.compile(r"^v?[0-9]+(\.[0-9]+)*$")
SEMVER_RE = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+$")
MUTABLE_TAGS = frozenset({"latest"})
MAX_ARG_LEN = 128

PLAYBOOKS = {
    "provision": "playbooks/infra.yml",
    "deploy": "playbooks/deploy.yml",
    "rollback": "playbooks/rollback.yml",
    "status": "playbooks/status.yml",
    "history": "playbooks/history.yml",
    "unlock": "playbooks/unlock.yml",
}


def _shown(value: str) -> str:
    """A value quoted for an error message, cut so that 10 kB of input does not become 10 kB of output."""
    return repr(value if len(value) <= 40 else value[:40] + "...")


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
    inventories = project / "inventories"
    return sorted(p.parent.name for p in inventories.glob("*/hosts.yml") if ENV_RE.fullmatch(p.parent.name))


def check_env_name(project: Path, name: str) -> str:
    envs = known_envs(project)
    if len(name) > MAX_ARG_LEN or not ENV_RE.fullmatch(name) or name not in envs:
        raise InputError(
            f"--env {_shown(name)}: unknown environment; use one of: {', '.join(envs) or '(none)'} "
            "(one directory with a hosts.yml under inventories/)"
        )
    return name


def check_service_name(name: str) -> str:
    if len(name) > MAX_ARG_LEN or not NAME_RE.fullmatch(name):
        raise InputError(
            f"--service {_shown(name)}: not a service name; use 2-40 lower-case letters, digits and '-', "
            "starting with a letter and not ending with '-'"
        )
    return name


def check_version(version: str) -> str:
    """A release to deploy: vMAJOR.MINOR.PATCH or another immutable image tag."""
    if len(version) > MAX_ARG_LEN or not TAG_RE.fullmatch(version):
        raise InputError(
            f"--version {_shown(version)}: not an image tag; use a version such as v1.4.2 or a tag of "
            "letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')"
        )
    if VERSION_LIKE_RE.fullmatch(version) and not SEMVER_RE.fullmatch(version):
        raise InputError(
            f"--version {_shown(version)}: a version needs all three parts with a leading v, e.g. v1.4.2"
        )
    if version in MUTABLE_TAGS:
        raise InputError(
            f"--version {version}: a moving tag cannot be rolled back; use an immutable tag such as v1.4.2"
        )
    return version


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
    check_service_name(service)
    if service not in env.services:
        raise InputError(
            f"--service {service}: not in the services registry of {env.name} "
            f"(slipway_services in inventories/{env.name}/group_vars/{env.name}/); "
            f"known: {', '.join(env.services) or '(none)'}"
        )
    return service


def playbook_path(project: Path, command: str) -> Path:
    path = project / PLAYBOOKS[command]
    if not path.is_file():
        raise InputError(f"{PLAYBOOKS[command]} is missing from {project}; `slipway {command}` runs it")
    return path
