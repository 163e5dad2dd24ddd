"""The topology filters (slipway.core.topology, slipway.core.topology_problem): the contract's rule on Ansible's
groups and hostvars, its refusals as AnsibleFilterError (topology) or as the message (topology_problem), and how
host variables are read: raw from the inventory, templated only when they are an expression (a managed
PostgreSQL's CA lookup is never resolved for the check)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import dump_task, loaded, play

from slipway_core import contract
from slipway_core import topology as rules

from plugin_loader import load_filter  # isort: skip

module = load_filter("topology")
topology, topology_problem, host_settings = module.topology, module.topology_problem, module.host_settings
data_tier = module.data_tier

GROUPS = {"prod": ["edge-1", "app-1", "data-1"], "prod_edge": ["edge-1"], "prod_app": ["app-1"],
          "prod_data": ["data-1"], "prod_monitoring": ["data-1"]}


class LazyVars:
    """One host's variables, each templated when it is read (as Ansible's HostVarsVars)."""

    def __init__(self, raw: dict[str, Any], resolved: dict[str, Any]) -> None:
        self.raw, self.resolved = raw, resolved

    def get(self, name: str) -> Any:
        value = self.raw.get(name)
        return self.resolved[value] if isinstance(value, str) and "{{" in value else value


class FakeHostVars(Mapping[str, Any]):
    """Ansible's HostVars as far as the filter uses it: raw_get (the inventory as written) and, per host, the
    templated values (here: a template is 'resolved' by a table, anything unknown fails like an undefined)."""

    def __init__(self, raw: dict[str, dict[str, Any]], resolved: dict[str, Any]) -> None:
        self.raw, self.resolved = raw, resolved

    def raw_get(self, host: str) -> dict[str, Any]:
        return self.raw.get(host, {})

    def __getitem__(self, host: str) -> LazyVars:
        return LazyVars(self.raw_get(host), self.resolved)

    def __iter__(self) -> Any:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


ADDRESSED = {"edge-1": {"slipway_private_address": "10.0.1.10"}, "app-1": {"slipway_private_address": "10.0.1.11"},
             "data-1": {"slipway_private_address": "10.0.1.12"}}


def test_the_groups_alone_give_each_roles_hosts() -> None:
    """What the plays use in `hosts:` (a play's hosts are templated without hostvars)."""
    assert topology(GROUPS, "prod") == {"hosts": ["edge-1", "app-1", "data-1"], "edge": ["edge-1"],
                                        "app": ["app-1"], "data": ["data-1"], "monitoring": ["data-1"]}
    assert topology({"local": ["vm"]}, "local")["app"] == ["vm"]


def test_no_environment_selects_no_host_in_a_play_and_is_refused_by_preflight() -> None:
    """`hosts:` without -e env (--syntax-check, ansible-lint) or with an unknown one: no host, no error there;
    preflight (with hostvars) refuses it, after its first task named the known environments."""
    empty: dict[str, list[str]] = {"hosts": [], "edge": [], "app": [], "data": [], "monitoring": []}
    assert topology(GROUPS, "") == topology(GROUPS, None) == topology(GROUPS, "nosuch") == empty
    assert topology_problem(GROUPS, "nosuch", FakeHostVars({}, {})) == (
        "environment 'nosuch' has no hosts in the loaded inventory: put its hosts in group 'nosuch' in "
        "inventories/nosuch/hosts.yml")


def test_a_refusal_is_a_filter_error_with_the_contracts_message() -> None:
    with pytest.raises(AnsibleFilterError) as raised:
        topology({"prod": ["a", "b"]}, "prod")
    assert raised.value.message == refusal_of(lambda: rules.topology("prod", {"prod": ["a", "b"]}))
    with pytest.raises(AnsibleFilterError, match="give Ansible's groups, not list"):
        topology(["prod"], "prod")


def refusal_of(call: Any) -> str:
    with pytest.raises(contract.InputRefused) as refused:
        call()
    return str(refused.value)


def test_host_variables_are_checked_only_when_hostvars_are_given() -> None:
    topology(GROUPS, "prod")  # no addresses, but no hostvars either: the plays' use
    message = topology_problem(GROUPS, "prod", FakeHostVars({}, {}))
    assert message.startswith("host edge-1 (edge) has no slipway_private_address, and data-1 (monitoring) must")
    assert topology_problem(GROUPS, "prod", FakeHostVars(ADDRESSED, {})) == ""


def test_every_request_runs_across_hosts() -> None:
    """A deploy and a rollback across hosts are the cluster rollout's plays; a request that is none is refused."""
    hostvars = FakeHostVars(ADDRESSED, {})
    assert topology_problem(GROUPS, "prod", hostvars, request="env") == ""
    assert topology_problem(GROUPS, "prod", hostvars, request="status") == ""
    assert topology_problem(GROUPS, "prod", hostvars, request="deploy") == ""
    assert topology_problem(GROUPS, "prod", hostvars, request="rollback") == ""
    assert topology_problem(GROUPS, "prod", hostvars, request="rolback").startswith("unknown request 'rolback'")
    assert topology_problem({"local": ["vm"]}, "local", FakeHostVars({}, {}), request="rollback") == ""


def test_known_environments_are_passed_on() -> None:
    assert topology_problem(GROUPS, "prod", FakeHostVars(ADDRESSED, {}), known_envs=["prod", "prod_app"]) == (
        "prod_app is an environment and also the group of a role in environment prod: rename that environment")


def test_a_value_is_templated_only_when_it_is_an_expression() -> None:
    raw = {"app-1": {"slipway_private_address": "{{ app_address }}", "postgresql_managed": {"host": "{{ nope }}"},
                     "redis_managed": {"host": "{{ nope }}"}, "infra_network_subnet": "10.9.0.0/24",
                     "unrelated": "{{ undefined_secret }}"}}
    hostvars = FakeHostVars(raw, {"{{ app_address }}": "10.0.1.11"})
    assert host_settings(hostvars, ["app-1", "gone"]) == {
        "app-1": {"slipway_private_address": "10.0.1.11", "infra_network_subnet": "10.9.0.0/24",
                  "slipway_rollout_batch_size": None,
                  "postgresql_managed": {"host": "{{ nope }}"}, "redis_managed": {"host": "{{ nope }}"}},
        "gone": {"slipway_private_address": None, "infra_network_subnet": None, "slipway_rollout_batch_size": None,
                 "postgresql_managed": None, "redis_managed": None},
    }


INVENTORY = """\
all:
  children:
    prod:
      vars:
        # Never resolved by the check: the file does not exist.
        postgresql_managed: {host: pgm-x.rds, ca_certificate: "{{ lookup('file', '/nonexistent/ca.pem') }}"}
      children:
        prod_edge: {hosts: {edge-1: {slipway_private_address: 10.0.1.10}}}
        prod_app: {hosts: {app-1: {slipway_private_address: "{{ '10.0.1.' ~ 11 }}"}}}
        prod_data: {hosts: {data-1: {slipway_private_address: 10.0.1.12}}}
        prod_monitoring: {hosts: {data-1: {}}}
"""


def test_in_a_real_play_with_ansibles_own_hostvars(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(INVENTORY, encoding="utf-8")
    out = tmp_path / "out.json"
    result = play(tmp_path, """
        - name: Read the topology
          ansible.builtin.set_fact:
            found:
              groups_only: "{{ groups | slipway.core.topology('prod') }}"
              problem: "{{ groups | slipway.core.topology_problem('prod', hostvars) }}"
              deploy: "{{ groups | slipway.core.topology_problem('prod', hostvars, request='deploy') }}"
              rollback: "{{ groups | slipway.core.topology_problem('prod', hostvars, request='rollback') }}"
    """ + dump_task("found", out), inventory=str(inventory))
    assert result.returncode == 0, result.stdout
    found = loaded(out)
    assert found["groups_only"] == {"hosts": ["edge-1", "app-1", "data-1"], "edge": ["edge-1"], "app": ["app-1"],
                                    "data": ["data-1"], "monitoring": ["data-1"]}
    assert found["problem"] == ""
    assert found["deploy"] == ""
    assert found["rollback"] == ""
    inventory.write_text(INVENTORY.replace("10.0.1.12", "\"{{ '10.0.1.' ~ 11 }}\""), encoding="utf-8")
    result = play(tmp_path, """
        - name: Refuse the topology
          ansible.builtin.debug:
            msg: "{{ groups | slipway.core.topology('prod', hostvars) }}"
    """, inventory=str(inventory))
    assert result.returncode != 0
    assert ("hosts app-1 and data-1 have the same slipway_private_address 10.0.1.11: give each host its own private "
            "address in inventories/prod/hosts.yml") in " ".join(result.stdout.split())


def test_data_tier_reads_the_addresses_from_the_inventory() -> None:
    """What the postgresql, redis and app_release roles use: the data host's private address and the app hosts'."""
    hostvars = FakeHostVars({**ADDRESSED, "data-1": {"slipway_private_address": "{{ data_address }}"}},
                            {"{{ data_address }}": "10.0.1.12"})
    assert data_tier(GROUPS, "prod", hostvars) == {"data_host": "data-1", "address": "10.0.1.12",
                                                   "clients": [{"host": "app-1", "address": "10.0.1.11"}]}
    one_vm = {"data_host": "vm", "address": "", "clients": []}
    assert data_tier({"local": ["vm"]}, "local", FakeHostVars({}, {})) == one_vm
    assert data_tier(GROUPS, "", None) == data_tier(GROUPS, None, None) == {"data_host": "", "address": "",
                                                                             "clients": []}
    with pytest.raises(AnsibleFilterError, match="host app-1 has no slipway_private_address"):
        data_tier(GROUPS, "prod", FakeHostVars({"data-1": ADDRESSED["data-1"]}, {}))
    with pytest.raises(AnsibleFilterError, match="give Ansible's groups, not list"):
        data_tier(["prod"], "prod")


class CountingHostVars(FakeHostVars):
    """FakeHostVars that counts how often each host's variables are read."""

    def __init__(self, raw: dict[str, dict[str, Any]], resolved: dict[str, Any]) -> None:
        super().__init__(raw, resolved)
        self.reads: dict[str, int] = {}

    def raw_get(self, host: str) -> dict[str, Any]:
        self.reads[host] = self.reads.get(host, 0) + 1
        return super().raw_get(host)


def test_env_plan_gives_each_host_the_rules_answers_reading_each_hosts_variables_once() -> None:
    """What preflight sets on each host (slipway_env_plan): the rollout's hosts and the data tier as their own rules
    give them, and each host's own publish address; every host's variables read once for all of it."""
    groups = {**GROUPS, "prod": ["edge-1", "app-1", "app-2", "data-1"], "prod_app": ["app-1", "app-2"]}
    addressed = {**ADDRESSED, "app-2": {"slipway_private_address": "10.0.1.14"}}
    hostvars = CountingHostVars(addressed, {})
    plan = module.env_plan(groups, "prod", hostvars)
    assert sorted(plan) == ["app-1", "app-2", "data-1", "edge-1"]
    assert hostvars.reads == {"edge-1": 1, "app-1": 1, "app-2": 1, "data-1": 1}
    for host, mine in plan.items():
        assert mine["rollout"] == rules.rollout_hosts("prod", groups, addressed)
        assert mine["data_tier"] == rules.data_tier("prod", groups, addressed)
        assert mine["publish_address"] == rules.publish_address("prod", groups, addressed, host)
    assert [plan[h]["publish_address"] for h in ("app-1", "app-2", "edge-1")] == ["10.0.1.11", "10.0.1.14", ""]


def test_env_plan_without_an_environment_is_empty_and_a_bad_address_is_refused_naming_the_host() -> None:
    assert module.env_plan(GROUPS, "", FakeHostVars(ADDRESSED, {})) == {}
    bad = {**ADDRESSED, "app-1": {"slipway_private_address": "not-an-address"}}
    with pytest.raises(AnsibleFilterError, match="app-1"):
        module.env_plan(GROUPS, "prod", FakeHostVars(bad, {}))
