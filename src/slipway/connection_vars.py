"""How Ansible would connect to each host of an environment: `python -m slipway.connection_vars <inventory> <group>`.

Run by slipway.logs_transport in a child process, as slipway.known_hosts runs slipway.inventory_hosts (working
directory the repository, the run's environment without secrets, the vault password on stdin): the inventory is
read with Ansible's own InventoryManager and VariableManager and each host's variables templated. On top of
inventory_hosts' answer for SSH hosts (address, port, user, ssh arguments) it reports what a transport of its own
needs: the private key file, the become method and user and whether a become or SSH password is set (never the
password), the Docker connection's container and extra arguments, and the app_release role's paths on the
host when the inventory overrides them.

Output: one JSON line on stdout, {"hosts": [{...}], "groups": {...}} (as inventory_hosts); an inventory Ansible
cannot read: exit 1 and one line `slipway-inventory: <reason>` on stderr.
"""

from __future__ import annotations

import sys
from typing import Any

from ansible import constants as C
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from ansible.vars.manager import VariableManager

from slipway.inventory_hosts import Unresolved, _first, _host, main

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


def describe(host: Any, manager: VariableManager, loader: DataLoader) -> dict[str, Any]:
    """inventory_hosts' answer for `host`, and what a transport of its own needs on top."""
    return _more(host, manager, loader, _host(host, manager, loader))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], describe))
