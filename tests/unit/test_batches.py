"""slipway_core.batches and the topology's rollout in batches (docs/rollout.md, "All at once or in batches"): the
setting refused with the fix, the topology batches need, the batches' sizes, which hosts roll out as on one VM, what
each edge routes to, and the summary of a rollout that stopped."""

from __future__ import annotations

from typing import Any

import pytest

from slipway_core import batches, topology
from slipway_core.contract import InputRefused

SETTING = "slipway_rollout_batch_size"


def fleet(apps: tuple[str, ...] = ("app-1", "app-2", "app-3"), edges: tuple[str, ...] | None = None,
          ) -> dict[str, list[str]]:
    """Ansible's groups for `prod`: every app host its own edge (unless `edges`), one data host."""
    return {"prod": [*apps, *(h for h in (edges or ()) if h not in apps), "data-1"],
            "prod_edge": list(apps if edges is None else edges), "prod_app": list(apps),
            "prod_data": ["data-1"], "prod_monitoring": ["data-1"]}


def with_setting(groups: dict[str, list[str]], value: Any) -> dict[str, dict[str, Any]]:
    return {host: {SETTING: value, "slipway_private_address": f"10.0.1.{10 + i}"}
            for i, host in enumerate(groups["prod"])}


def refusal(call: Any, *args: Any) -> str:
    with pytest.raises(InputRefused) as refused:
        call(*args)
    return str(refused.value)


# ------------------------------------------------------------------------------------------------ the setting
@pytest.mark.parametrize(("value", "parsed"), [(None, None), ("", None), (1, (1, False)), ("2", (2, False)),
                                               ("25%", (25, True)), (" 100% ", (100, True)), ("1%", (1, True))])
def test_the_setting_is_a_number_of_hosts_or_a_percentage(value: Any, parsed: Any) -> None:
    assert batches.parse(value, "prod") == parsed


@pytest.mark.parametrize("value", [0, "0", -1, "0%", "101%", "half", "1.5", 1.5, True, [1], "25 %%", "%"])
def test_a_bad_setting_is_refused_naming_the_fix(value: Any) -> None:
    message = refusal(batches.parse, value, "prod")
    assert message.startswith(f"{SETTING} {value!r}")
    assert ("a whole number of app hosts per batch (1 or more, such as 1) or a percentage of them (such as 25%), or "
            "remove it to roll every app host out at once, in inventories/prod/group_vars/prod/") in message


def test_the_setting_belongs_to_the_environment_not_to_some_hosts() -> None:
    groups = fleet()
    host_vars = with_setting(groups, 1)
    host_vars["app-2"] = {**host_vars["app-2"], SETTING: 2}
    message = refusal(batches.setting, "prod", groups["prod"], host_vars)
    assert message == (f"{SETTING} differs between the hosts of environment prod (app-1: 1; app-2: 2; app-3: 1; "
                       f"data-1: 1): set it once for the environment, in inventories/prod/group_vars/prod/")
    assert batches.setting("prod", groups["prod"], with_setting(groups, "50%")) == (50, True)
    assert batches.setting("prod", groups["prod"], {}) is None


# ------------------------------------------------------------------------------------------------ the sizes
@pytest.mark.parametrize(("hosts", "batch", "sizes"), [
    (3, (1, False), [1, 1, 1]),
    (4, (2, False), [1, 2, 1]),
    (5, (2, False), [1, 2, 2]),
    (2, (5, False), [1, 1]),
    (4, (50, True), [1, 2, 1]),
    (3, (10, True), [1, 1, 1]),  # 10% of 3 rounds down to 0: at least 1
    (4, (100, True), [1, 3]),
    (1, (1, False), [1]),
    (3, None, []),
    (0, (1, False), []),
])
def test_the_first_app_host_goes_alone_then_batches_of_the_setting(hosts: int, batch: Any, sizes: list[int]) -> None:
    """The first batch migrates for the whole rollout before any other host starts the release: it is one host."""
    assert batches.sizes(hosts, batch) == sizes
    assert sum(sizes) == (hosts if batch else 0)


# ------------------------------------------------------------------------------------------------ the topology
def test_batches_roll_every_app_host_out_as_on_one_vm_in_serial_batches() -> None:
    groups = fleet()
    found = topology.rollout_hosts("prod", groups, with_setting(groups, 2))
    assert found == {"one_host": ["app-1", "app-2", "app-3"], "apps": [], "first_app": [], "edges": [], "settle": [],
                     "serial": [1, 2]}


def test_without_the_setting_the_same_fleet_is_the_cluster_rollout() -> None:
    groups = fleet(apps=("app-1", "app-2"))
    assert topology.rollout_hosts("prod", groups, with_setting(groups, None)) == {
        "one_host": [], "apps": ["app-1", "app-2"], "first_app": ["app-1"], "edges": ["app-1", "app-2"],
        "settle": ["app-1", "app-2", *[h for h in groups["prod_monitoring"] if h not in ("app-1", "app-2")]],
        "serial": []}
    assert topology.rollout_hosts("prod", groups)["apps"] == ["app-1", "app-2"]


def test_one_vm_with_the_setting_is_one_host_one_batch() -> None:
    groups = {"local": ["vm-1"]}
    assert topology.rollout_hosts("local", groups, {"vm-1": {SETTING: 1}}) == {
        "one_host": ["vm-1"], "apps": [], "first_app": [], "edges": [], "settle": [], "serial": []}


def test_an_edge_that_is_not_an_app_host_is_refused_in_batches() -> None:
    groups = fleet(apps=("app-1", "app-2"), edges=("app-1", "app-2", "edge-1"))
    message = refusal(topology.rollout_hosts, "prod", groups, with_setting(groups, 1))
    assert message == (
        f"{SETTING} is set, but edge host edge-1 of environment prod is not an app host: in batches each edge routes "
        "only to its own host's colours, so edge-1 would route nothing. Make every edge an app host (put edge-1 in "
        "group prod_app too, or take it out of prod_edge) in inventories/prod/hosts.yml, or remove "
        f"{SETTING} from inventories/prod/group_vars/prod/ to roll every app host out at once")


def test_an_app_host_without_its_own_edge_is_refused_in_batches() -> None:
    groups = fleet(apps=("app-1", "app-2"), edges=("app-1",))
    message = refusal(topology.rollout_hosts, "prod", groups, with_setting(groups, "50%"))
    assert message.startswith(f"{SETTING} is set, but app host app-2 of environment prod has no edge of its own: "
                              "in batches each app host switches its own edge behind the cloud load balancer. Put "
                              "app-2 in group prod_edge too in inventories/prod/hosts.yml, or remove")


def test_preflight_check_hosts_refuses_a_bad_setting_and_a_topology_batches_cannot_work_on() -> None:
    groups = fleet(apps=("app-1", "app-2"), edges=("app-1",))
    found = topology.topology("prod", groups)
    assert "has no edge of its own" in refusal(topology.check_hosts, "prod", found, with_setting(groups, 1))
    assert "is not a batch size" in refusal(topology.check_hosts, "prod", found, with_setting(groups, "all"))
    topology.check_hosts("prod", found, with_setting(groups, None))  # the cluster rollout: accepted
    good = fleet()
    topology.check_hosts("prod", topology.topology("prod", good), with_setting(good, 1))


def test_in_batches_each_edge_routes_only_to_its_own_colours_and_nothing_is_published() -> None:
    groups = fleet(apps=("app-1", "app-2"))
    host_vars = with_setting(groups, 1)
    assert topology.edge_sources("prod", groups, host_vars, "app-1") == {"local": True, "remote": []}
    assert topology.publish_address("prod", groups, host_vars, "app-2") == ""
    # The same fleet rolled out at once: each edge routes to every app host's colours, published for it.
    at_once = with_setting(groups, None)
    assert topology.edge_sources("prod", groups, at_once, "app-1") == {
        "local": True, "remote": [{"host": "app-2", "index": 2, "address": "10.0.1.11"}]}
    assert topology.publish_address("prod", groups, at_once, "app-2") == "10.0.1.11"


# ------------------------------------------------------------------------------------------------ the summary
def test_the_summary_names_which_host_runs_which_release() -> None:
    reports = {
        "app-1": {"result": "deployed", "version": "v2"},
        "app-2": {"result": "failed", "version": "v2", "previous_version": "v1", "failed_phase": "health"},
    }
    assert batches.summary(["app-1", "app-2", "app-3"], reports, "api") == (
        "api after the batches: app-1: v2 (deployed); app-2: failed in phase health, v1 still serving; app-3: not "
        "reached (a later batch), left as it was")


def test_the_summary_of_an_unknown_or_first_release() -> None:
    reports = {"app-1": {"result": "unknown", "version": "v2"},
               "app-2": {"result": "failed", "version": "v2", "previous_version": ""},
               "app-3": {"result": "noop", "version": "v2"}}
    assert batches.summary(["app-3", "app-1", "app-2"], reports, "api") == (
        "api after the batches: app-3: v2 (noop); app-1: unknown (needs a person: see its result); app-2: failed in "
        "phase unknown, its previous release still serving")
