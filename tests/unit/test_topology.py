"""topology.topology, check_hosts and check_rollout_topology: the hosts of each role in an environment, and every
topology that cannot work refused with a message that names the problem and the fix (docs/topology.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from slipway_core import contract, topology
from slipway_core.contract import InputRefused

WHERE = "inventories/prod/hosts.yml"


def refusal(check: Callable[..., Any], *args: Any) -> str:
    with pytest.raises(InputRefused) as refused:
        check(*args)
    return str(refused.value)


def cluster(**change: list[str]) -> dict[str, list[str]]:
    """Ansible's groups for a three-role-host environment `prod` (edge-1, app-1, app-2, data-1), with changes."""
    groups = {
        "all": ["edge-1", "app-1", "app-2", "data-1", "other-1"],
        "other": ["other-1"],
        "prod": ["edge-1", "app-1", "app-2", "data-1"],
        "prod_edge": ["edge-1"],
        "prod_app": ["app-1", "app-2"],
        "prod_data": ["data-1"],
        "prod_monitoring": ["data-1"],
    }
    groups.update(change)
    return groups


ADDRESSES: dict[str, dict[str, Any]] = {
    "edge-1": {"slipway_private_address": "10.0.1.10"},
    "app-1": {"slipway_private_address": "10.0.1.11"},
    "app-2": {"slipway_private_address": "10.0.1.12"},
    "data-1": {"slipway_private_address": "10.0.1.13"},
}


def without(host: str, var: str = "slipway_private_address") -> dict[str, dict[str, Any]]:
    return {**ADDRESSES, host: {k: v for k, v in ADDRESSES[host].items() if k != var}}


def checked(groups: dict[str, list[str]], host_vars: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    found = topology.topology("prod", groups)
    topology.check_hosts("prod", found, host_vars)
    return found


# ------------------------------------------------------------------------------------------------ accepted
def test_one_host_without_role_groups_holds_every_role() -> None:
    """Today's one-VM inventory: no role groups, one host, no private address needed."""
    found = topology.topology("local", {"all": ["slipway-local"], "local": ["slipway-local"]})
    assert found == {"hosts": ["slipway-local"], "edge": ["slipway-local"], "app": ["slipway-local"],
                     "data": ["slipway-local"], "monitoring": ["slipway-local"]}
    topology.check_hosts("local", found, {})
    topology.check_rollout_topology("local", found, "deploy")
    topology.check_rollout_topology("local", found, "rollback")


def test_one_host_in_every_role_group_is_the_same_as_none() -> None:
    groups = {"prod": ["vm-1"], **{f"prod_{role}": ["vm-1"] for role in topology.HOST_ROLES}}
    found = topology.topology("prod", groups)
    assert found == topology.topology("prod", {"prod": ["vm-1"]})
    topology.check_rollout_topology("prod", found, "deploy")


def test_role_groups_give_each_role_its_hosts_in_inventory_order() -> None:
    found = checked(cluster(), ADDRESSES)
    assert found == {"hosts": ["edge-1", "app-1", "app-2", "data-1"], "edge": ["edge-1"], "app": ["app-1", "app-2"],
                     "data": ["data-1"], "monitoring": ["data-1"]}


def test_a_host_may_hold_several_roles_and_needs_an_address_only_when_another_host_reaches_it() -> None:
    """edge+app on vm-1, data+monitoring on vm-2: vm-1's colours are reached by its own edge, but the monitoring
    host reaches vm-1, and vm-1 reaches the data host: both need addresses."""
    groups = {"prod": ["vm-1", "vm-2"], "prod_edge": ["vm-1"], "prod_app": ["vm-1"], "prod_data": ["vm-2"],
              "prod_monitoring": ["vm-2"]}
    found = topology.topology("prod", groups)
    topology.check_hosts("prod", found, {"vm-1": {"slipway_private_address": "10.0.1.1"},
                                         "vm-2": {"slipway_private_address": "10.0.1.2"}})
    message = refusal(topology.check_hosts, "prod", found, {"vm-1": {"slipway_private_address": "10.0.1.1"}})
    assert message == ("host vm-2 (data) has no slipway_private_address, and vm-1 (app) must reach PostgreSQL and "
                       f"Redis on it: set slipway_private_address to its private IPv4 address for vm-2 in {WHERE}")


def test_two_edges_are_accepted_for_provisioning() -> None:
    groups = cluster(prod=["edge-1", "edge-2", "app-1", "app-2", "data-1"], prod_edge=["edge-1", "edge-2"])
    found = checked(groups, {**ADDRESSES, "edge-2": {"slipway_private_address": "10.0.1.14"}})
    assert found["edge"] == ["edge-1", "edge-2"]


def test_a_managed_postgresql_with_a_data_host_is_accepted() -> None:
    """Managed wins for PostgreSQL; the data host keeps Redis (no managed Redis yet)."""
    managed = {host: {**values, "postgresql_managed": {"host": "pgm-x.rds"}} for host, values in ADDRESSES.items()}
    assert checked(cluster(), managed)["data"] == ["data-1"]


def test_an_address_may_be_given_to_a_host_that_needs_none() -> None:
    found = topology.topology("prod", {"prod": ["vm-1"]})
    topology.check_hosts("prod", found, {"vm-1": {"slipway_private_address": "192.168.10.5"}})


# ------------------------------------------------------------------------------------------------ refused
def test_several_hosts_without_role_groups_are_ambiguous() -> None:
    """The old production example: two hosts, each would get its own PostgreSQL, Redis and edge."""
    message = refusal(topology.topology, "prod", {"prod": ["prod-app-1", "prod-app-2"]})
    assert message == (
        "environment prod has 2 hosts (prod-app-1, prod-app-2) and no host roles, so each would run its own "
        "PostgreSQL, Redis and edge: put them in the groups prod_edge, prod_app, prod_data, prod_monitoring under "
        f"prod in {WHERE} (exactly one data host; docs/topology.md), or keep one host")


def test_no_hosts_at_all() -> None:
    assert refusal(topology.topology, "prod", {"prod": []}) == (
        f"environment 'prod' has no hosts in the loaded inventory: put its hosts in group 'prod' in {WHERE}")


def test_two_data_hosts() -> None:
    message = refusal(topology.topology, "prod", cluster(prod_data=["data-1", "app-2"]))
    assert message == (
        "environment prod has 2 data hosts (data-1, app-2): keep exactly one in group prod_data (the one host that "
        "runs PostgreSQL and Redis (or makes their databases and users when they are managed); two would each hold "
        "their own databases, and "
        "the services' data would depend on the host that answered)")


@pytest.mark.parametrize(
    ("role", "fix"),
    [
        ("edge", "the host that receives the traffic on ports 80 and 443"),
        ("app", "the hosts that run the services' colours"),
        ("data", "the one host that runs PostgreSQL and Redis (or makes their databases and users when they are "
                 "managed)"),
        ("monitoring", "the host that runs Prometheus (any host: it scrapes the others over their private addresses)"),
    ],
)
def test_a_missing_role(role: str, fix: str) -> None:
    """Declared empty, or not declared while other role groups are."""
    for groups in (cluster(**{f"prod_{role}": []}), {k: v for k, v in cluster().items() if k != f"prod_{role}"}):
        assert refusal(topology.topology, "prod", groups) == (
            f"environment prod has no {role} host: add {fix} to group prod_{role} in {WHERE}")


def test_two_monitoring_hosts() -> None:
    message = refusal(topology.topology, "prod", cluster(prod_monitoring=["data-1", "edge-1"]))
    assert message.startswith("environment prod has 2 monitoring hosts (data-1, edge-1): keep exactly one in group "
                              "prod_monitoring")


def test_the_monitoring_host_may_be_any_host() -> None:
    """Prometheus scrapes the other hosts over their private addresses: monitoring away from the data is fine, and
    then the data host needs its address for the monitoring host too."""
    groups = cluster(prod_monitoring=["edge-1"])
    assert checked(groups, ADDRESSES)["monitoring"] == ["edge-1"]
    assert refusal(topology.check_hosts, "prod", topology.topology("prod", groups), without("data-1")) == (
        "host data-1 (data) has no slipway_private_address, and app-1 (app) must reach PostgreSQL and Redis on it: "
        f"set slipway_private_address to its private IPv4 address for data-1 in {WHERE}")


def test_a_role_host_outside_the_environment() -> None:
    """A role group written beside the environment's group, not under it, or a host of another group."""
    message = refusal(topology.topology, "prod", cluster(prod_app=["app-1", "other-1"]))
    assert message == (f"host other-1 is in group prod_app but not in environment prod: put prod_app under prod's "
                       f"children in {WHERE}")


def test_a_host_without_a_role() -> None:
    message = refusal(topology.topology, "prod", cluster(prod=["edge-1", "app-1", "app-2", "data-1", "spare-1"]))
    assert message == ("host spare-1 of environment prod holds no role: add it to one of the groups prod_edge, "
                       f"prod_app, prod_data, prod_monitoring in {WHERE}, or remove it")


def test_a_role_group_named_like_an_environment() -> None:
    message = refusal(topology.topology, "prod", cluster(), ["prod", "prod_data"])
    assert message == ("prod_data is an environment and also the group of a role in environment prod: rename that "
                       "environment")


@pytest.mark.parametrize(
    ("host", "role", "reacher", "what"),
    [
        ("app-1", "app", "edge-1 (edge)", "its colours"),  # the edge cannot reach an app host without it
        ("data-1", "data", "app-1 (app)", "PostgreSQL and Redis"),  # the app hosts are elsewhere
        ("edge-1", "edge", "data-1 (monitoring)", "its stats"),  # Prometheus scrapes the edge
    ],
)
def test_a_host_another_host_must_reach_has_a_private_address(host: str, role: str, reacher: str, what: str) -> None:
    found = topology.topology("prod", cluster())
    assert refusal(topology.check_hosts, "prod", found, without(host)) == (
        f"host {host} ({role}) has no slipway_private_address, and {reacher} must reach {what} on it: "
        f"set slipway_private_address to its private IPv4 address for {host} in {WHERE}")


def test_an_empty_address_counts_as_none() -> None:
    found = topology.topology("prod", cluster())
    message = refusal(topology.check_hosts, "prod", found, {**ADDRESSES, "app-2": {"slipway_private_address": ""}})
    assert message.startswith("host app-2 (app) has no slipway_private_address")


@pytest.mark.parametrize(
    "value",
    ["8.8.8.8", "203.0.113.5", "127.0.0.1", "0.0.0.0", "169.254.0.5", "10.0.1", "app-1.internal", "fd00::1", 7],  # noqa: S104 - refused, never bound
)
def test_an_address_that_is_not_a_private_ipv4_address(value: Any) -> None:
    found = topology.topology("prod", cluster())
    message = refusal(topology.check_hosts, "prod", found, {**ADDRESSES, "app-2": {"slipway_private_address": value}})
    assert message == (f"slipway_private_address {contract.shown(value)} of host app-2 is not a private IPv4 "
                       "address: give the address its VPC (private network) gives it, in 10.0.0.0/8, 172.16.0.0/12, "
                       f"192.168.0.0/16, 100.64.0.0/10 (such as 10.0.1.10), in {WHERE}")


@pytest.mark.parametrize("value", ["10.255.0.1", "172.31.9.9", "192.168.1.2", "100.100.1.1"])
def test_a_private_address_is_accepted(value: str) -> None:
    found = topology.topology("prod", cluster())
    topology.check_hosts("prod", found, {**ADDRESSES, "app-2": {"slipway_private_address": value}})


def test_two_hosts_with_one_address() -> None:
    found = topology.topology("prod", cluster())
    same = {**ADDRESSES, "app-2": {"slipway_private_address": "10.0.1.11"}}
    message = refusal(topology.check_hosts, "prod", found, same)
    assert message == ("hosts app-1 and app-2 have the same slipway_private_address 10.0.1.11: give each host its "
                       f"own private address in {WHERE}")


def test_an_address_inside_the_shared_docker_network() -> None:
    """A host sends traffic for its shared network's subnet to the bridge: a VPC address there is unreachable."""
    found = topology.topology("prod", cluster())
    default = {**ADDRESSES, "app-2": {"slipway_private_address": "172.30.1.7"}}  # in 172.30.0.0/22, the default
    assert refusal(topology.check_hosts, "prod", found, default) == (
        "slipway_private_address 172.30.1.7 of host app-2 lies in 172.30.0.0/22, host edge-1's shared Docker network "
        "(infra_network_subnet), so edge-1 would send its traffic to the bridge: choose an infra_network_subnet "
        "clear of the private network's addresses")
    moved = {host: {**values, "infra_network_subnet": "10.0.1.0/24"} for host, values in ADDRESSES.items()}
    assert "lies in 10.0.1.0/24" in refusal(topology.check_hosts, "prod", found, moved)
    clear = {host: {**values, "infra_network_subnet": "10.220.0.0/24"} for host, values in default.items()}
    topology.check_hosts("prod", found, clear)


@pytest.mark.parametrize("name", ["postgresql_managed", "redis_managed"])
def test_a_managed_database_set_for_some_hosts_only(name: str) -> None:
    found = topology.topology("prod", cluster())
    half = {**ADDRESSES, "data-1": {**ADDRESSES["data-1"], name: {"host": "pgm-x.rds"}}}
    assert refusal(topology.check_hosts, "prod", found, half) == (
        f"{name} is set for data-1 but not for edge-1, app-1, app-2: set it once for the environment, in "
        "inventories/prod/group_vars/prod/")
    whole = {host: {**values, name: {"host": "r-x.redis"}} for host, values in ADDRESSES.items()}
    topology.check_hosts("prod", found, whole)


# ------------------------------------------------------------------------------------------------ rollouts
def test_a_deploy_across_hosts_is_the_cluster_rollout() -> None:
    found = topology.topology("prod", cluster())
    topology.check_rollout_topology("prod", found, "deploy")
    # The settle play's hosts: the app hosts, then the monitoring host (the data host here), which writes Prometheus'
    # targets beside their drain.
    assert topology.rollout_hosts("prod", cluster()) == {
        "one_host": [], "apps": ["app-1", "app-2"], "first_app": ["app-1"], "edges": ["edge-1"],
        "settle": ["app-1", "app-2", "data-1"], "serial": []}


def test_a_rollback_across_hosts_is_the_cluster_rollout_too() -> None:
    """Rollback across hosts runs the cluster rollout's plays (playbooks/cluster/rollout.yml): nothing refused."""
    found = topology.topology("prod", cluster())
    topology.check_rollout_topology("prod", found, "rollback")
    assert "unknown request 'rolback'" in refusal(topology.check_rollout_topology, "prod", found, "rolback")


def test_a_rollout_with_edge_app_and_data_on_one_host_is_accepted_whatever_else() -> None:
    """One host holds edge, app and data (and monitoring, by the rule above): the rollout is today's."""
    groups = {"prod": ["vm-1"], "prod_edge": ["vm-1"], "prod_app": ["vm-1"], "prod_data": ["vm-1"],
              "prod_monitoring": ["vm-1"]}
    for request_ in ("deploy", "rollback"):
        topology.check_rollout_topology("prod", topology.topology("prod", groups), request_)
    assert topology.rollout_hosts("prod", groups)["one_host"] == ["vm-1"]
    assert topology.rollout_hosts("local", {"local": ["vm-1"]}) == {
        "one_host": ["vm-1"], "apps": [], "first_app": [], "edges": [], "settle": [], "serial": []}
    assert topology.rollout_hosts("", {}) == {"one_host": [], "apps": [], "first_app": [], "edges": [], "settle": [],
                                              "serial": []}


def test_a_second_edge_makes_it_a_cluster_rollout() -> None:
    """An edge the one-host rollout does not switch would keep routing the old colour: every edge is switched."""
    groups = {"prod": ["vm-1", "vm-2"], "prod_edge": ["vm-1", "vm-2"], "prod_app": ["vm-1"], "prod_data": ["vm-1"],
              "prod_monitoring": ["vm-1"]}
    assert topology.rollout_hosts("prod", groups) == {
        "one_host": [], "apps": ["vm-1"], "first_app": ["vm-1"], "edges": ["vm-1", "vm-2"], "settle": ["vm-1"],
        "serial": []}
    topology.check_rollout_topology("prod", topology.topology("prod", groups), "rollback")


def test_an_app_host_publishes_its_colours_only_for_an_edge_on_another_host() -> None:
    assert topology.publish_address("prod", cluster(), ADDRESSES, "app-2") == "10.0.1.12"
    assert topology.publish_address("prod", cluster(), ADDRESSES, "edge-1") == ""  # not an app host
    assert topology.publish_address("local", {"local": ["vm-1"]}, {}, "vm-1") == ""
    assert topology.publish_address("", {}, {}, "vm-1") == ""
    assert "host app-2 has no slipway_private_address, and the edge edge-1 reaches its colours there" in refusal(
        topology.publish_address, "prod", cluster(), {**ADDRESSES, "app-2": {}}, "app-2")
    assert topology.edge_sources("prod", cluster(), ADDRESSES, "edge-1") == {"local": False, "remote": [
        {"host": "app-1", "index": 1, "address": "10.0.1.11"}, {"host": "app-2", "index": 2, "address": "10.0.1.12"}]}
    assert topology.edge_sources("", {}, {}, "vm-1") == {"local": True, "remote": []}


def test_env_plan_on_one_vm_is_the_one_host_rollout_with_nothing_published() -> None:
    """One VM (the environment's only host holds every role): its plan is the one-host rollout, the data tier on the
    same host, nothing published; no environment: no host has a plan."""
    assert topology.env_plan("local", {"local": ["vm-1"]}, {}) == {"vm-1": {
        "rollout": {"one_host": ["vm-1"], "apps": [], "first_app": [], "edges": [], "settle": [], "serial": []},
        "data_tier": {"data_host": "vm-1", "address": "", "clients": []}, "publish_address": ""}}
    assert topology.env_plan("", cluster(), ADDRESSES) == {}
    plan = topology.env_plan("prod", cluster(), ADDRESSES)
    assert {host: mine["publish_address"] for host, mine in plan.items()} == {
        host: topology.publish_address("prod", cluster(), ADDRESSES, host) for host in cluster()["prod"]}


@pytest.mark.parametrize("request_", ["env", "status", ""])
def test_provisioning_and_reads_run_on_any_topology(request_: str) -> None:
    topology.check_rollout_topology("prod", topology.topology("prod", cluster()), request_)


# ------------------------------------------------------------------------------------------------ data tier
def test_data_tier_on_one_vm_publishes_nothing_and_admits_no_remote_host() -> None:
    """One VM (no role groups, or every role on one host): nothing published, no address needed."""
    assert topology.data_tier("local", {"local": ["vm-1"]}, {}) == {"data_host": "vm-1", "address": "",
                                                                   "clients": []}
    groups = {"prod": ["vm-1"], **{f"prod_{role}": ["vm-1"] for role in topology.HOST_ROLES}}
    assert topology.data_tier("prod", groups, {})["address"] == ""


def test_data_tier_without_an_environment_is_one_vm() -> None:
    """A role run outside the playbooks (no env, or one the inventory does not hold): the one-VM behaviour."""
    none = {"data_host": "", "address": "", "clients": []}
    assert topology.data_tier("", cluster(), ADDRESSES) == none
    assert topology.data_tier("nosuch", cluster(), ADDRESSES) == none


def test_data_tier_across_hosts_listens_on_the_data_hosts_address_and_admits_only_the_app_hosts() -> None:
    tier = topology.data_tier("prod", cluster(), ADDRESSES)
    assert tier == {"data_host": "data-1", "address": "10.0.1.13",
                    "clients": [{"host": "app-1", "address": "10.0.1.11"}, {"host": "app-2", "address": "10.0.1.12"}]}
    # The edge (10.0.1.10) is no client. An app host that is also the data host reaches it on its own Docker
    # network: it is no remote client either.
    both = topology.data_tier("prod", cluster(prod_app=["app-1", "data-1"], prod_edge=["edge-1", "app-2"]), ADDRESSES)
    assert both["address"] == "10.0.1.13" and [c["host"] for c in both["clients"]] == ["app-1"]


def test_data_tier_refuses_a_missing_or_bad_address_naming_the_host() -> None:
    assert refusal(topology.data_tier, "prod", cluster(), without("data-1")) == (
        "host data-1 has no slipway_private_address, and the app hosts app-1, app-2 reach PostgreSQL and Redis on it "
        "(data): set slipway_private_address to its private IPv4 address for data-1 in inventories/prod/hosts.yml")
    assert refusal(topology.data_tier, "prod", cluster(), without("app-2")).startswith(
        "host app-2 has no slipway_private_address, and the data host data-1 admits it by that address (app)")
    public = {**ADDRESSES, "app-1": {"slipway_private_address": "203.0.113.5"}}
    assert "203.0.113.5" in refusal(topology.data_tier, "prod", cluster(), public)


# ------------------------------------------------------------------------------------------------ scrape_plan
def test_scrape_plan_on_one_vm_or_without_an_environment_scrapes_nothing_remote() -> None:
    one = {"all": ["vm-1"], "local": ["vm-1"]}
    assert topology.scrape_plan("local", one, {}) == {"monitoring_host": "vm-1", "data_host": "vm-1", "remote": []}
    assert topology.scrape_plan("", one, {}) == {"monitoring_host": "", "data_host": "", "remote": []}


def test_scrape_plan_lists_every_other_host_with_its_address_and_roles() -> None:
    plan = topology.scrape_plan("prod", cluster(prod_monitoring=["edge-1"]), ADDRESSES)
    assert plan == {
        "monitoring_host": "edge-1",
        "data_host": "data-1",
        "remote": [
            {"host": "app-1", "address": "10.0.1.11", "edge": False, "app": True, "data": False},
            {"host": "app-2", "address": "10.0.1.12", "edge": False, "app": True, "data": False},
            {"host": "data-1", "address": "10.0.1.13", "edge": False, "app": False, "data": True},
        ],
    }
    # The monitoring host on the data host (the old layout): the edge is scraped from afar, the data host is not.
    remote = topology.scrape_plan("prod", cluster(), ADDRESSES)["remote"]
    assert [(h["host"], h["edge"]) for h in remote] == [("edge-1", True), ("app-1", False), ("app-2", False)]


def test_scrape_plan_refuses_a_scraped_host_without_an_address() -> None:
    assert refusal(topology.scrape_plan, "prod", cluster(prod_monitoring=["edge-1"]), without("app-2")) == (
        "host app-2 has no slipway_private_address, and the monitoring host edge-1 scrapes its exporters there: set "
        f"slipway_private_address to its private IPv4 address for app-2 in {WHERE}")
