"""Topology: which host of an environment holds which role (edge, app, data, monitoring), and the checks that
refuse a topology that cannot work, naming the fix (docs/topology.md).

The controller's side only (the CLI's preflight and the collection's `slipway.core.topology` filter); hosts never
need it. Standard library only, Python 3.8+, like the contract it builds on.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Mapping, Sequence

from . import batches
from .contract import NETWORK_SUBNET_DEFAULT, PRIVATE_NETWORKS, InputRefused, network_plan, shown

# The roles a host holds in an environment (docs/topology.md). The inventory puts hosts in groups `<env>_<role>`
# under the environment's group; an environment without any of them has one host, which holds every role.
HOST_ROLES = ("edge", "app", "data", "monitoring")
ADDRESS_VAR = "slipway_private_address"
TOPOLOGY_DOC = "docs/topology.md"
# What another host reaches on a host of each role (for the message when its private address is missing).
_REACHED_FOR = {"app": "its colours", "data": "PostgreSQL and Redis", "edge": "its stats"}


def role_group(env: str, role: str) -> str:
    return f"{env}_{role}"


def _names(hosts: Iterable[str]) -> str:
    return ", ".join(hosts) or "(none)"


def _address(host: str, value: Any, where: str) -> ipaddress.IPv4Address | None:
    if value is None or value == "":
        return None
    try:
        address = ipaddress.IPv4Address(str(value))
    except ValueError:
        address = None
    if address is None or not any(address in net for net in PRIVATE_NETWORKS):
        raise InputRefused(f"{ADDRESS_VAR} {shown(value)} of host {host} is not a private IPv4 address: give the "
                           f"address its VPC (private network) gives it, in {', '.join(map(str, PRIVATE_NETWORKS))} "
                           f"(such as 10.0.1.10), in {where}")
    return address


def topology(env: str, groups: Mapping[str, Sequence[str]], known_envs: Sequence[str] = ()) -> dict[str, list[str]]:
    """The hosts of each role in environment `env` from Ansible's `groups` (group -> hosts): {hosts, edge, app, data,
    monitoring}, each in inventory order, or InputRefused naming what cannot work and the fix. The plays pick their
    hosts with this; check_hosts adds the rules on host variables (preflight applies both)."""
    where = f"inventories/{env}/hosts.yml"
    hosts = list(groups.get(env) or [])
    if not hosts:
        raise InputRefused(f"environment {env!r} has no hosts in the loaded inventory: put its hosts in group "
                           f"{env!r} in {where}")
    members = _members(env, groups, hosts, known_envs, where)
    _check_roles(env, hosts, members, where)
    return {"hosts": hosts, **members}


# The settings that put PostgreSQL or Redis on a provider's server (docs/managed-database.md, docs/managed-redis.md).
MANAGED_VARS = ("postgresql_managed", "redis_managed")


def check_hosts(env: str, found: Mapping[str, Sequence[str]], host_vars: Mapping[str, Mapping[str, Any]]) -> None:
    """The rules on the host variables of a topology (`found`, from topology()): `host_vars` gives per host
    `slipway_private_address`, `infra_network_subnet`, `postgresql_managed` and `redis_managed` (anything true:
    set). Every host another host must reach has a private address, no two share one, none lies in a shared Docker
    network, and a managed PostgreSQL or Redis is set for the whole environment or for none of it. With
    `slipway_rollout_batch_size` (read from `host_vars` too), a good value, set once, on a topology batches work on."""
    hosts = list(found["hosts"])
    _in_batches(env, found, host_vars)
    for name in MANAGED_VARS:
        managed = {host: bool((host_vars.get(host) or {}).get(name)) for host in hosts}
        if len(set(managed.values())) > 1:
            on = [host for host in hosts if managed[host]]
            off = [host for host in hosts if not managed[host]]
            raise InputRefused(f"{name} is set for {_names(on)} but not for {_names(off)}: set it once for the "
                               f"environment, in inventories/{env}/group_vars/{env}/")
    _check_addresses(env, hosts, found, host_vars, f"inventories/{env}/hosts.yml")


def _members(env: str, groups: Mapping[str, Sequence[str]], hosts: Sequence[str], known_envs: Sequence[str],
             where: str) -> dict[str, list[str]]:
    """The hosts of each role group; the one host in every role when there is none."""
    all_groups = ", ".join(role_group(env, role) for role in HOST_ROLES)
    members = {role: list(groups.get(role_group(env, role)) or []) for role in HOST_ROLES}
    clash = next((role_group(env, role) for role in HOST_ROLES if role_group(env, role) in known_envs), None)
    if clash is not None:
        raise InputRefused(f"{clash} is an environment and also the group of a role in environment {env}: rename "
                           "that environment")
    if any(members.values()):
        return members
    if len(hosts) > 1:
        raise InputRefused(
            f"environment {env} has {len(hosts)} hosts ({_names(hosts)}) and no host roles, so each would run its "
            f"own PostgreSQL, Redis and edge: put them in the groups {all_groups} under {env} in {where} (exactly "
            f"one data host; {TOPOLOGY_DOC}), or keep one host")
    return {role: list(hosts) for role in HOST_ROLES}


_ROLE_FIX = {"edge": "the host that receives the traffic on ports 80 and 443",
             "app": "the hosts that run the services' colours",
             "data": "the one host that runs PostgreSQL and Redis (or makes their databases and users when they are "
                     "managed)",
             "monitoring": "the host that runs Prometheus (any host: it scrapes the others over their private "
                           "addresses)"}


def _check_roles(env: str, hosts: Sequence[str], members: Mapping[str, Sequence[str]], where: str) -> None:
    for role in HOST_ROLES:
        outside = [host for host in members[role] if host not in hosts]
        if outside:
            raise InputRefused(f"host {outside[0]} is in group {role_group(env, role)} but not in environment {env}: "
                               f"put {role_group(env, role)} under {env}'s children in {where}")
        if not members[role]:
            raise InputRefused(f"environment {env} has no {role} host: add {_ROLE_FIX[role]} to group "
                               f"{role_group(env, role)} in {where}")
    for role in ("data", "monitoring"):
        if len(members[role]) > 1:
            raise InputRefused(
                f"environment {env} has {len(members[role])} {role} hosts ({_names(members[role])}): keep exactly "
                f"one in group {role_group(env, role)} ({_ROLE_FIX[role]}"
                + ("; two would each hold their own databases, and the services' data would depend on the host "
                   "that answered)" if role == "data" else ")"))
    idle = [host for host in hosts if not any(host in members[role] for role in HOST_ROLES)]
    if idle:
        raise InputRefused(f"host {idle[0]} of environment {env} holds no role: add it to one of the groups "
                           f"{', '.join(role_group(env, r) for r in HOST_ROLES)} in {where}, or remove it")


def _check_addresses(env: str, hosts: Sequence[str], members: Mapping[str, Sequence[str]],
                     host_vars: Mapping[str, Mapping[str, Any]], where: str) -> None:
    """Every host another host must reach has a private address; no two share one; none lies in a host's shared
    Docker network (that host would send the traffic to its bridge)."""
    addresses: dict[str, ipaddress.IPv4Address] = {}
    for host in hosts:
        found = _address(host, (host_vars.get(host) or {}).get(ADDRESS_VAR), where)
        if found is not None:
            other = next((name for name, seen in addresses.items() if seen == found), None)
            if other is not None:
                raise InputRefused(f"hosts {other} and {host} have the same {ADDRESS_VAR} {found}: give each host "
                                   f"its own private address in {where}")
            addresses[host] = found
    # Who must reach whom: edges reach the app hosts, app hosts the data host, the monitoring host every other host.
    reached_by = {"app": ("edge", "monitoring"), "data": ("app", "monitoring"), "edge": ("monitoring",)}
    for host in hosts:
        if host in addresses:
            continue
        for role in ("app", "data", "edge"):
            reacher = next(((other, by) for by in reached_by[role] for other in members[by]
                            if host in members[role] and other != host), None)
            if reacher is not None:
                raise InputRefused(
                    f"host {host} ({role}) has no {ADDRESS_VAR}, and {reacher[0]} ({reacher[1]}) must reach "
                    f"{_REACHED_FOR[role]} on it: set {ADDRESS_VAR} to its private IPv4 address for {host} in {where}")
    for host in hosts:
        subnet = (host_vars.get(host) or {}).get("infra_network_subnet") or NETWORK_SUBNET_DEFAULT
        network = ipaddress.IPv4Network(network_plan(subnet)["subnet"])
        inside = next((name for name, found in addresses.items() if found in network), None)
        if inside is not None:
            raise InputRefused(
                f"{ADDRESS_VAR} {addresses[inside]} of host {inside} lies in {network}, host {host}'s shared Docker "
                f"network (infra_network_subnet), so {host} would send its traffic to the bridge: choose an "
                f"infra_network_subnet clear of the private network's addresses")


def data_tier(env: str, groups: Mapping[str, Sequence[str]],
              host_vars: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Where the data tier is reached from other hosts (docs/topology.md, "The data tier across hosts"):
    {data_host, address, clients}. `address` is the data host's private address when some app host of `env` is
    another host (PostgreSQL and Redis are published there, on nothing else), else "" (one VM: nothing published);
    `clients` are those other app hosts, each {host, address}, in inventory order: the only remote addresses the
    data tier admits. No environment (a role run outside the playbooks), or one unknown to `groups`: one VM, no data
    host named. `host_vars` gives each host's slipway_private_address; a missing or bad one is refused, naming it."""
    none: dict[str, Any] = {"data_host": "", "address": "", "clients": []}
    if not env or not groups.get(env):
        return none
    found = topology(env, groups)
    data = found["data"][0]
    remote = [host for host in found["app"] if host != data]
    if not remote:
        return {**none, "data_host": data}
    where = f"inventories/{env}/hosts.yml"

    def address_of(host: str, why: str) -> str:
        address = _address(host, (host_vars.get(host) or {}).get(ADDRESS_VAR), where)
        if address is None:
            raise InputRefused(f"host {host} has no {ADDRESS_VAR}, and {why}: set {ADDRESS_VAR} to its private IPv4 "
                               f"address for {host} in {where}")
        return str(address)

    return {
        "data_host": data,
        "address": address_of(data, f"the app hosts {_names(remote)} reach PostgreSQL and Redis on it (data)"),
        "clients": [{"host": host, "address": address_of(host, f"the data host {data} admits it by that address (app)")}
                    for host in remote],
    }


ROLLOUT_REQUESTS = ("deploy", "rollback")


def check_rollout_topology(env: str, found: Mapping[str, Any], request: str) -> None:
    """A deploy and a rollback run on any topology that passed: one host, or the cluster rollout's plays across app
    hosts and edges (a rollback begins there with `rollback --begin`, docs/topology.md). Nothing more to refuse."""
    if request not in (*ROLLOUT_REQUESTS, "env", "status", ""):
        raise InputRefused(f"unknown request {request!r}: one of {', '.join(ROLLOUT_REQUESTS)}, env, status")


def _roles_or_one_vm(env: str, groups: Mapping[str, Sequence[str]]) -> dict[str, list[str]] | None:
    """The topology, or None outside an environment (a role run on its own: one VM)."""
    if not env or not groups.get(env):
        return None
    return topology(env, groups)


def publish_address(env: str, groups: Mapping[str, Sequence[str]], host_vars: Mapping[str, Mapping[str, Any]],
                    host: str) -> str:
    """Where app host `host` publishes its colours (docs/topology.md, "The cluster rollout"): its private address when
    some edge host of `env` is another host, else "" (one VM, or the only edge is this host: nothing published)."""
    found = _roles_or_one_vm(env, groups)
    if found is None or host not in found["app"] or all(edge == host for edge in found["edge"]):
        return ""
    if _in_batches(env, found, host_vars):  # its own edge is its only one: nothing published
        return ""
    address = _address(host, (host_vars.get(host) or {}).get(ADDRESS_VAR), f"inventories/{env}/hosts.yml")
    if address is None:
        raise InputRefused(f"host {host} has no {ADDRESS_VAR}, and the edge {found['edge'][0]} reaches its colours "
                           f"there: set {ADDRESS_VAR} to its private IPv4 address for {host} in "
                           f"inventories/{env}/hosts.yml")
    return str(address)


def edge_sources(env: str, groups: Mapping[str, Sequence[str]], host_vars: Mapping[str, Mapping[str, Any]],
                 edge: str) -> dict[str, Any]:
    """Where edge `edge` finds each service's colours: {local, remote}. `local`: the edge is an app host (or there
    is no environment: one VM), its own colours are servers at their fixed addresses; `remote`: every other app
    host, {host, index (1-based among the app hosts, the server names' suffix), address}, in inventory order; none
    in batches (`slipway_rollout_batch_size` in `host_vars`: each edge routes only to its own host's colours)."""
    found = _roles_or_one_vm(env, groups)
    if found is None:
        return {"local": True, "remote": []}
    if _in_batches(env, found, host_vars):
        return {"local": edge in found["app"], "remote": []}
    return {
        "local": edge in found["app"],
        "remote": [{"host": app, "index": i + 1,
                    "address": publish_address(env, groups, host_vars, app)}
                   for i, app in enumerate(found["app"]) if app != edge],
    }


def _in_batches(env: str, found: Mapping[str, Sequence[str]], host_vars: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether `env` rolls out in batches (its setting, refused when bad or on a topology batches cannot work on)."""
    if batches.setting(env, list(found["hosts"]), host_vars) is None:
        return False
    batches.check_topology(env, found)
    return True


def rollout_hosts(env: str, groups: Mapping[str, Sequence[str]],
                  host_vars: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, list[Any]]:
    """The hosts of each play of a deploy (playbooks/deploy.yml): `one_host` when one app host also holds every
    edge (the rollout as on one VM: that host switches its own edge), or in batches (`slipway_rollout_batch_size` in
    `host_vars`: every app host, each its own edge, as on one VM, `serial` the batches' sizes); else the cluster
    rollout's `apps`, `first_app` (image, backup and migration once), `edges` and `settle` (the last play's: the app
    hosts, then the monitoring host when it is none of them: it writes Prometheus' targets beside their drain). Each
    list empty when its path is not taken (`serial` empty: one batch of all)."""
    none: dict[str, list[Any]] = {"one_host": [], "apps": [], "first_app": [], "edges": [], "settle": [], "serial": []}
    found = _roles_or_one_vm(env, groups)
    if found is None:
        return none
    apps, edges = list(found["app"]), list(found["edge"])
    if len(apps) == 1 and all(edge == apps[0] for edge in edges):
        return {**none, "one_host": apps}
    batch = batches.setting(env, list(found["hosts"]), host_vars or {})
    if batch is not None:
        batches.check_topology(env, found)
        return {**none, "one_host": apps, "serial": batches.sizes(len(apps), batch)}
    settle = apps + [host for host in found["monitoring"] if host not in apps]
    return {**none, "apps": apps, "first_app": apps[:1], "edges": edges, "settle": settle}



def env_plan(env: str, groups: Mapping[str, Sequence[str]],
             host_vars: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """What each host of `env` needs to know of the environment for a run, read once (preflight sets it on every
    host as the fact `slipway_env_plan`, so the rollout's tasks do not walk every host's variables again on each
    use): host -> {rollout (rollout_hosts), data_tier, publish_address (this host's)}. {} without an environment."""
    if not env or not groups.get(env):
        return {}
    rollout = rollout_hosts(env, groups, host_vars)
    tier = data_tier(env, groups, host_vars)
    return {host: {"rollout": rollout, "data_tier": tier,
                   "publish_address": publish_address(env, groups, host_vars, host)}
            for host in topology(env, groups)["hosts"]}

def scrape_plan(env: str, groups: Mapping[str, Sequence[str]],
                host_vars: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What the monitoring host scrapes on the other hosts (docs/topology.md, "Monitoring across hosts"):
    {monitoring_host, data_host, remote: [{host, address, edge, app, data}]}: every host of `env` but the monitoring
    host, in inventory order, with its private address (where it publishes its exporters, and an edge its stats) and
    the roles that say what else it exposes. The monitoring host's own exporters stay inside Prometheus' network
    namespace as on one VM. No environment (a role run outside the playbooks), or one host: nothing remote."""
    found = _roles_or_one_vm(env, groups)
    if found is None:
        return {"monitoring_host": "", "data_host": "", "remote": []}
    monitoring = found["monitoring"][0]
    where = f"inventories/{env}/hosts.yml"
    remote = []
    for host in found["hosts"]:
        if host == monitoring:
            continue
        address = _address(host, (host_vars.get(host) or {}).get(ADDRESS_VAR), where)
        if address is None:
            raise InputRefused(f"host {host} has no {ADDRESS_VAR}, and the monitoring host {monitoring} scrapes its "
                               f"exporters there: set {ADDRESS_VAR} to its private IPv4 address for {host} in {where}")
        remote.append({"host": host, "address": str(address),
                       **{role: host in found[role] for role in ("edge", "app", "data")}})
    return {"monitoring_host": monitoring, "data_host": found["data"][0], "remote": remote}
