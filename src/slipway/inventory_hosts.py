"""An environment's hosts as Ansible itself sees them: `python -m slipway.inventory_hosts <inventory> <group>`.

Run by slipway.known_hosts in a child process whose working directory is the repository (so Ansible reads the
repository's ansible.cfg, as ansible-playbook will) and whose environment is the one the run gets (so
`lookup('ansible.builtin.env', ...)` answers as in the run); the vault password, if any, comes on stdin. The
inventory is read with InventoryManager, DataLoader (with the vault secret) and VariableManager; each host's
connection, address, port, user and ssh arguments are templated with its variables, as the run would template
them before connecting. A value that needs what only the run has (facts, registered results) is reported as
unresolved, with Ansible's reason.

Output: one JSON line on stdout, {"hosts": [{name, connection, ssh, address, port, user, ssh_args, problem}],
"groups": {group: [host, ...]}} (`groups` is Ansible's own magic variable, each group's hosts in inventory order: the
host roles are read from it, slipway.app_hosts); an inventory Ansible cannot read: exit 1 and one line
`slipway-inventory: <reason>` on stderr.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultSecret
from ansible.plugins.loader import connection_loader, init_plugin_loader
from ansible.template import Templar
from ansible.vars.manager import VariableManager

SSH_CONNECTIONS = frozenset(
    {"ssh", "ansible.builtin.ssh", "ansible.legacy.ssh", "paramiko", "paramiko_ssh", "ansible.builtin.paramiko_ssh"}
)
# The ssh connection plugin's options that reach ssh's command line, and the variables that set them.
SSH_ARG_OPTIONS = {
    "ssh_args": "ansible_ssh_args",
    "ssh_common_args": "ansible_ssh_common_args",
    "ssh_extra_args": "ansible_ssh_extra_args",
}


class Unresolved(Exception):
    """A host variable that cannot be templated before the run."""


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else exc.__class__.__name__


def _first(variables: Mapping[str, Any], templar: Any, names: tuple[str, ...]) -> tuple[str, Any]:
    """(the variable's name, its templated value) for the first of `names` the host has; ("", None) for none."""
    for name in names:
        if name in variables:
            try:
                return name, templar.template(variables[name])
            except AnsibleError as exc:
                raise Unresolved(f"{name} cannot be resolved before the run ({_reason(exc)})") from exc
    return "", None


def _ssh_args(variables: Mapping[str, Any], templar: Any) -> list[str]:
    """ssh_args, ssh_common_args, ssh_extra_args as the ssh connection plugin takes them (its variables, then the
    ANSIBLE_SSH_* environment, then ansible.cfg's [ssh_connection]), split as a shell would."""
    templated = {}
    for var in SSH_ARG_OPTIONS.values():
        name, value = _first(variables, templar, (var,))
        if name:
            templated[name] = value
    args: list[str] = []
    for option in SSH_ARG_OPTIONS:
        value = C.config.get_config_value(option, plugin_type="connection", plugin_name="ssh", variables=templated)
        args += shlex.split(str(value or ""))
    return args


def _host(host: Any, manager: VariableManager, loader: DataLoader) -> dict[str, Any]:
    variables = manager.get_vars(host=host, include_hostvars=False)
    templar = Templar(loader=loader, variables=variables)
    item: dict[str, Any] = {"name": str(host.name), "connection": "", "ssh": False, "address": None, "port": None,
                            "user": None, "ssh_args": [], "problem": None}
    try:
        _, connection = _first(variables, templar, ("ansible_connection",))
        item["connection"] = str(connection or C.DEFAULT_TRANSPORT)
        item["ssh"] = item["connection"] in SSH_CONNECTIONS
        if not item["ssh"]:
            return item
        name, address = _first(variables, templar, ("ansible_host", "ansible_ssh_host"))
        if name and not str(address or "").strip():
            raise Unresolved(f"{name} is empty")
        item["address"] = str(address).strip() if name else str(host.name)
        name, port = _first(variables, templar, ("ansible_port", "ansible_ssh_port"))
        if port not in (None, ""):
            try:
                item["port"] = int(port)
            except (TypeError, ValueError) as exc:
                raise Unresolved(f"{name} {str(port)[:40]!r} is not a port number") from exc
        _, user = _first(variables, templar, ("ansible_user", "ansible_ssh_user"))
        item["user"] = str(user) if user not in (None, "") else None
        item["ssh_args"] = _ssh_args(variables, templar)
    except Unresolved as exc:
        item["problem"] = str(exc)
    return item


# What a child reports per host: this module's answer, or another module's on top of it (slipway.connection_vars).
Describe = Callable[[Any, VariableManager, DataLoader], dict[str, Any]]


def read(source: str, group: str, vault_password: str, describe: Describe | None = None) -> list[dict[str, Any]]:
    """The hosts of `group` in the inventory `source` (all of its hosts if it has no such group), each as
    `describe` reports it (default: _host)."""
    return list(read_inventory(source, group, vault_password, describe)["hosts"])


def read_inventory(source: str, group: str, vault_password: str, describe: Describe | None = None) -> dict[str, Any]:
    """{"hosts": read()'s answer, "groups": Ansible's `groups` (group -> its hosts, in inventory order), as a play
    sees it}."""
    init_plugin_loader()
    connection_loader.get("ssh", class_only=True)  # loads the ssh plugin's option definitions
    loader = DataLoader()
    if vault_password:
        loader.set_vault_secrets([("default", VaultSecret(vault_password.encode()))])
    inventory = InventoryManager(loader=loader, sources=[source])
    manager = VariableManager(loader=loader, inventory=inventory)
    pattern = group if group in inventory.groups else "all"
    hosts = [(describe or _host)(host, manager, loader) for host in inventory.get_hosts(pattern)]
    groups = {str(name): [str(host) for host in members] for name, members in inventory.get_groups_dict().items()}
    return {"hosts": hosts, "groups": groups}


def main(argv: list[str], describe: Describe | None = None) -> int:
    source, group = argv
    password = sys.stdin.read().rstrip("\n")
    try:
        found = read_inventory(source, group, password, describe)
    except Exception as exc:  # one line for the parent, never a traceback
        sys.stderr.write(f"slipway-inventory: {exc.__class__.__name__}: {_reason(exc)}\n")
        return 1
    sys.stdout.write("\n" + json.dumps(found) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
