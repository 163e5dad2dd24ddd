"""The app hosts of an environment: the hosts that run the services' colours, hence the only hosts where `slipway
exec` can start a one-off container of a live release and `slipway logs` can read one (docs/topology.md).

One rule, the playbooks': slipway_core.topology.topology over Ansible's `groups` (the groups `<env>_edge`,
`<env>_app`, `<env>_data` and `<env>_monitoring`, or one host holding every role), as Ansible's own InventoryManager
reads them from inventories/<env>/hosts.yml (slipway.inventory_hosts in a child process, as the host key check reads
the hosts). A topology whose groups the plays could not use is refused here (exit 2), with the contract's message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from slipway.exitcodes import InputError
from slipway.known_hosts import InventoryRead, read_inventory
from slipway.validation import known_envs
from slipway_core import contract, topology


def roles(env: str, groups: Mapping[str, Sequence[str]], envs: Sequence[str] = ()) -> dict[str, list[str]]:
    """The hosts of each role ({hosts, edge, app, data, monitoring}, inventory order) from Ansible's `groups`."""
    try:
        return topology.topology(env, groups, envs)
    except contract.InputRefused as exc:
        raise InputError(str(exc)) from None


def roles_of(found: InventoryRead, project: Path, env: str) -> dict[str, list[str]]:
    """roles() of an inventory read by a child (slipway.known_hosts.read_inventory)."""
    return roles(env, found.groups, known_envs(project))


def read_roles(
    project: Path, env: str, environ: Mapping[str, str], vault_password: str | None
) -> dict[str, list[str]]:
    """roles() of inventories/<env>/hosts.yml as Ansible reads it; InputError if it cannot be read or used."""
    return roles_of(read_inventory("slipway.inventory_hosts", project, env, environ, vault_password), project, env)


def pick(found: Mapping[str, Sequence[str]], env: str, wanted: str | None) -> list[str]:
    """The app hosts a command about a service goes to: every app host (inventory order) when `wanted` (--host) is
    None, else that host alone; InputError naming the app hosts when it is not one of them."""
    app = list(found["app"])
    if wanted is None:
        return app
    if wanted in app:
        return [wanted]
    choose = f"the services' containers run on the app hosts: choose one of {', '.join(app)}"
    held = [role for role in topology.HOST_ROLES if wanted in found[role]]
    if held:
        raise InputError(f"host {contract.shown(wanted)} is the {' and '.join(held)} host of {env}, not an app "
                         f"host; {choose}")
    raise InputError(f"host {contract.shown(wanted)} is not a host of {env}; {choose}")
