"""How Ansible would connect to each host of an environment: `python -m slipway.connection_vars <inventory> <group>`.

Run by slipway.logs_transport in a child process, as slipway.known_hosts runs slipway.inventory_hosts (working
directory the repository, the run's environment without secrets, the vault password on stdin): the inventory is
read with Ansible's own InventoryManager and VariableManager and each host's variables templated. On top of
inventory_hosts' answer for SSH hosts (address, port, user, ssh arguments) it reports what a transport of its own
needs: the private key file, the become method and user and whether a become or SSH password is set (never the
password), the Docker connection's container and extra arguments, and the app_release role's paths on the
host when the inventory overrides them.

Output: one JSON line on stdout, {"hosts": [{...}]}; an inventory Ansible cannot read: exit 1 and one line
`slipway-inventory: <reason>` on stderr.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ansible import constants as C
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultSecret
from ansible.plugins.loader import connection_loader, init_plugin_loader
from ansible.template import Templar
from ansible.vars.manager import VariableManager

from slipway.inventory_hosts import Unresolved, _first, _host, _reason

# variable names -> the key reported, first found wins (Ansible's own precedence between aliases)
TEXT_VARS: dict[str, tuple[str, ...]] = {
    "private_key_file": ("ansible_ssh_private_key_file", "ansible_private_key_file"),
    "become_method": ("ansible_become_method",),
    "become_user": ("ansible_become_user",),
    "docker_extra_args": ("ansible_docker_extra_args",),
    "command_path": ("app_release_command_path",),
    "state_dir": ("app_release_state_dir",),
}
SECRET_VARS: dict[str, tuple[str, ...]] = {  # reported only as set or not
    "become_password_set": ("ansible_become_password", "ansible_become_pass", "ansible_sudo_pass"),
    "ssh_password_set": ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password"),
}


def _more(host: Any, manager: VariableManager, loader: DataLoader, item: dict[str, Any]) -> dict[str, Any]:
    variables = manager.get_vars(host=host, include_hostvars=False)
    templar = Templar(loader=loader, variables=variables)
    try:
        name, address = _first(variables, templar, ("ansible_docker_host", "ansible_host"))  # the docker plugin's
        item.setdefault("container", str(address).strip() if name and address else str(host.name))
        if not item.get("ssh"):
            _, user = _first(variables, templar, ("ansible_user", "ansible_docker_user"))
            item["user"] = str(user) if user not in (None, "") else None
        for key, names in TEXT_VARS.items():
            _, value = _first(variables, templar, names)
            item[key] = str(value) if value not in (None, "") else None
        for key, names in SECRET_VARS.items():
            item[key] = any(variables.get(n) not in (None, "") for n in names)
    except Unresolved as exc:
        item["problem"] = item.get("problem") or str(exc)
    if not item.get("become_method"):
        item["become_method"] = str(C.DEFAULT_BECOME_METHOD)
    if not item.get("become_user"):
        item["become_user"] = str(C.DEFAULT_BECOME_USER or "root")
    return item


def read(source: str, group: str, vault_password: str) -> list[dict[str, Any]]:
    """The hosts of `group` in `source` (all hosts when it has no such group), in the inventory's order."""
    init_plugin_loader()
    connection_loader.get("ssh", class_only=True)
    loader = DataLoader()
    if vault_password:
        loader.set_vault_secrets([("default", VaultSecret(vault_password.encode()))])
    inventory = InventoryManager(loader=loader, sources=[source])
    manager = VariableManager(loader=loader, inventory=inventory)
    pattern = group if group in inventory.groups else "all"
    return [_more(host, manager, loader, _host(host, manager, loader)) for host in inventory.get_hosts(pattern)]


def main(argv: list[str]) -> int:
    source, group = argv
    password = sys.stdin.read().rstrip("\n")
    try:
        hosts = read(source, group, password)
    except Exception as exc:  # one line for the parent, never a traceback
        sys.stderr.write(f"slipway-inventory: {exc.__class__.__name__}: {_reason(exc)}\n")
        return 1
    sys.stdout.write("\n" + json.dumps({"hosts": hosts}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
