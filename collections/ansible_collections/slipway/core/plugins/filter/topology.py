"""An environment's host roles (slipway_core.rules.topology): which hosts are its edge, app, data and monitoring
hosts, and where the postgresql role runs (docs/topology.md).

The plays pick their hosts with it (`hosts: "{{ (groups | slipway.core.topology(env)).app }}"`: a play's hosts see
the groups, not the hosts' variables), so `--list-hosts` shows them without running anything. Preflight (the first
play of every playbook) also passes `hostvars`, for the rules on host variables (private addresses, a managed
PostgreSQL), and its request, before any host is touched. The rules and their messages are the contract's.

`data_tier` says, for the postgresql, redis and app_release roles, where the data host publishes PostgreSQL and
Redis for app hosts on other VMs (its private address, or nothing on one VM) and which addresses it admits;
`scrape_plan` says, for the prometheus and edge_proxy roles, what the monitoring host scrapes on the other hosts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.slipway.core.plugins.plugin_utils.core import load_contract, load_topology

DOCUMENTATION = """
name: topology
short_description: The hosts of each role (edge, app, data, monitoring) in a Slipway environment
description:
  - Takes Ansible's C(groups) and the environment's name; returns a dict with C(hosts) (the environment's),
    C(edge), C(app), C(data) and C(monitoring), each in inventory order.
  - Hosts hold roles through the groups C(<env>_edge), C(<env>_app), C(<env>_data) and C(<env>_monitoring); an
    environment without them has one host, which holds every role.
  - Raises an error naming the problem and the fix for a topology that cannot work (two data hosts, no edge, an app
    host without C(slipway_private_address) that another host must reach, several hosts without roles, ...).
options:
  _input:
    description: Ansible's C(groups).
    type: dict
    required: true
  env:
    description: The environment (its group's name).
    type: str
    required: true
  hostvars:
    description: Ansible's C(hostvars), to check the host variables too; only C(slipway_private_address),
      C(infra_network_subnet), C(slipway_rollout_batch_size) (a whole number of app hosts or a percentage, on a
      topology where every app host is its own edge) and whether C(postgresql_managed) and C(redis_managed) are set
      are read.
    type: dict
    required: false
  request:
    description: What the playbook does (preflight's request, e.g. C(deploy) or C(rollback)); both run on any
      topology that passed (across hosts, the cluster rollout's plays).
    type: str
    required: false
  known_envs:
    description: The environments (a role group may not be named like one).
    type: list
    elements: str
    required: false
"""

# The host variables the rule reads. The managed settings (the topology's MANAGED_VARS) are only tested for being set:
# their raw values are read, so a CA lookup or an admin password is never templated for that.
ADDRESS_VARS = ("slipway_private_address", "infra_network_subnet", "slipway_rollout_batch_size")


def _templated(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def host_settings(hostvars: Any, hosts: Sequence[str]) -> dict[str, dict[str, Any]]:
    """What the rule reads of each host: the raw inventory value, templated only when it is an expression."""
    settings: dict[str, dict[str, Any]] = {}
    for host in hosts:
        raw_get = getattr(hostvars, "raw_get", None)
        raw = raw_get(host) if raw_get is not None else (hostvars or {}).get(host)
        raw = raw if isinstance(raw, Mapping) else {}
        found: dict[str, Any] = {}
        for name in (*ADDRESS_VARS, *load_topology().MANAGED_VARS):
            value = raw.get(name)
            if _templated(value):
                value = hostvars[host].get(name)
            found[name] = value
        settings[host] = found
    return settings


def topology(groups: Any, env: Any, hostvars: Any = None, request: str = "", known_envs: Any = ()) -> dict[str, Any]:
    """`groups | slipway.core.topology(env)`: the hosts of each role, or an error naming the fix. With `hostvars`
    (preflight), the rules on host variables too; with `request` (preflight's: deploy, rollback, ...), refused when
    that request cannot run on this topology."""
    contract = load_contract()
    rules = load_topology()
    if not isinstance(groups, Mapping):
        raise AnsibleFilterError(f"topology: give Ansible's groups, not {type(groups).__name__}")
    env = str(env or "")
    if not groups.get(env) and hostvars is None:
        # A play's hosts when no environment or an unknown one is given (preflight refuses it first, naming the
        # environments; --syntax-check has none): no host.
        return {"hosts": [], **{role: [] for role in rules.HOST_ROLES}}
    try:
        found: dict[str, Any] = rules.topology(env, groups, [str(name) for name in known_envs or ()])
        if hostvars is not None:
            rules.check_hosts(env, found, host_settings(hostvars, found["hosts"]))
        rules.check_rollout_topology(env, found, str(request or ""))
    except contract.InputRefused as err:
        raise AnsibleFilterError(str(err)) from err
    return found


def _env_plan(rule: str, groups: Any, env: Any, hostvars: Any) -> dict[str, Any]:
    """slipway_core.topology's `rule(env, groups, host settings)` for an environment, its refusal as a filter error."""
    if not isinstance(groups, Mapping):
        raise AnsibleFilterError(f"{rule}: give Ansible's groups, not {type(groups).__name__}")
    env = str(env or "")
    hosts = list(groups.get(env) or []) if env else []
    try:
        plan: dict[str, Any] = getattr(load_topology(), rule)(env, groups,
                                                              host_settings(hostvars, hosts) if hosts else {})
    except load_contract().InputRefused as err:
        raise AnsibleFilterError(str(err)) from err
    return plan


def data_tier(groups: Any, env: Any, hostvars: Any = None) -> dict[str, Any]:
    """`groups | slipway.core.data_tier(env, hostvars)`: where PostgreSQL and Redis are published for app hosts on
    other VMs and whom they admit (slipway_core.topology.data_tier): {data_host, address, clients}. No or an unknown
    environment (a role run outside the playbooks): one VM, nothing published."""
    return _env_plan("data_tier", groups, env, hostvars)


def scrape_plan(groups: Any, env: Any, hostvars: Any = None) -> dict[str, Any]:
    """`groups | slipway.core.scrape_plan(env, hostvars)`: what the monitoring host scrapes on the other hosts, over
    their private addresses (slipway_core.topology.scrape_plan): {monitoring_host, data_host, remote: [{host,
    address, edge, app, data}]}. No or an unknown environment (a role run outside the playbooks): nothing remote."""
    return _env_plan("scrape_plan", groups, env, hostvars)



def env_plan(groups: Any, env: Any, hostvars: Any = None) -> dict[str, Any]:
    """`groups | slipway.core.env_plan(env, hostvars)`: host -> {rollout, data_tier, publish_address} for each host
    of the environment (slipway_core.topology.env_plan), every host's variables read once; preflight sets each
    entry on its host as the fact `slipway_env_plan`. No or an unknown environment: {}."""
    return _env_plan("env_plan", groups, env, hostvars)

def topology_problem(groups: Any, env: Any, hostvars: Any = None, request: str = "", known_envs: Any = ()) -> str:
    """`groups | slipway.core.topology_problem(env, hostvars, request=...)`: the refusal's message, or "" when the
    topology works: preflight fails its task with this message as it is (an error raised inside a filter reaches
    the user wrapped in Ansible's own words)."""
    try:
        topology(groups, env, hostvars, request, known_envs)
    except AnsibleFilterError as err:
        return str(err.message)
    return ""


class FilterModule:
    """Filters of the environment's topology."""

    def filters(self) -> dict[str, Any]:
        return {"topology": topology, "topology_problem": topology_problem, "data_tier": data_tier,
                "scrape_plan": scrape_plan, "env_plan": env_plan}
