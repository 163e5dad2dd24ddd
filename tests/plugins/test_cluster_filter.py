"""The cluster rollout's filters (slipway.core.edge_members, publish_address, rollout_hosts, cluster_record,
cluster_verdict, cluster_results): the rules of slipway_core on Ansible's groups, hostvars and registered loop
results, and the errors that name the fix."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from slipway_core import contract

from plugin_loader import load_filter  # isort: skip

module = load_filter("cluster")
GROUPS = {"prod": ["edge-1", "app-1", "app-2", "data-1"], "prod_edge": ["edge-1"], "prod_app": ["app-1", "app-2"],
          "prod_data": ["data-1"], "prod_monitoring": ["data-1"]}
HOSTVARS: dict[str, dict[str, Any]] = {
    "edge-1": {"slipway_private_address": "10.0.1.10"},
    "app-1": {"slipway_private_address": "10.0.1.11", "slipway_colour_slots": {"slots": {"api": 0}}},
    "app-2": {"slipway_private_address": "10.0.1.12", "slipway_colour_slots": {"slots": {"api": 3}}},
    "data-1": {"slipway_private_address": "10.0.1.13"},
}
SERVICES = [{"name": "api", "port": 8000, "replicas": 1}]


def test_the_edge_routes_each_app_host_s_published_port() -> None:
    members = module.edge_members(SERVICES, {"api": {"blue": ["172.30.2.16"], "green": ["172.30.2.24"]}}, GROUPS,
                                  "prod", HOSTVARS, "edge-1")
    assert members["api"]["green"] == [
        {"name": "api-green.1", "address": "10.0.1.11", "port": 20008, "enabled_by": ""},
        {"name": "api-green.2", "address": "10.0.1.12", "port": 20000 + 3 * 16 + 8,
         "enabled_by": "SLIPWAY_LIVE_api_R2"},
    ]
    assert module.publish_address(GROUPS, "prod", HOSTVARS, "app-2") == "10.0.1.12"
    assert module.rollout_hosts(GROUPS, "prod", HOSTVARS)["edges"] == ["edge-1"]


def test_one_vm_routes_its_own_colours() -> None:
    local = {"api": {"blue": ["172.30.2.16"], "green": ["172.30.2.24"]}}
    members = module.edge_members(SERVICES, local, {"local": ["vm-1"]}, "local", {}, "vm-1")
    assert members["api"]["blue"] == [{"name": "api-blue", "address": "172.30.2.16", "port": 8000, "enabled_by": ""}]
    assert module.publish_address({"local": ["vm-1"]}, "local", {}, "vm-1") == ""


def test_an_app_host_whose_slots_were_not_read_is_named() -> None:
    hostvars = {**HOSTVARS, "app-2": {"slipway_private_address": "10.0.1.12"}}
    with pytest.raises(AnsibleFilterError, match="needs the address slots of app host app-2"):
        module.edge_members(SERVICES, {}, GROUPS, "prod", hostvars, "edge-1")
    with pytest.raises(AnsibleFilterError, match="app host app-1 has no address slot for other"):
        module.edge_members([{"name": "other", "port": 80}], {}, GROUPS, "prod", HOSTVARS, "edge-1")
    with pytest.raises(AnsibleFilterError, match="rollout_hosts: give Ansible's groups"):
        module.rollout_hosts(["not", "groups"], "prod", {})


def test_in_batches_every_app_host_is_its_own_edge_and_rolls_out_as_on_one_vm() -> None:
    """slipway_rollout_batch_size, read from hostvars: the one-host play's hosts and batches, no remote server."""
    groups = {"prod": ["app-1", "app-2", "data-1"], "prod_edge": ["app-1", "app-2"], "prod_app": ["app-1", "app-2"],
              "prod_data": ["data-1"], "prod_monitoring": ["data-1"]}
    hostvars = {host: {**HOSTVARS.get(host, {}), "slipway_rollout_batch_size": 1} for host in groups["prod"]}
    assert module.rollout_hosts(groups, "prod", hostvars) == {
        "one_host": ["app-1", "app-2"], "apps": [], "first_app": [], "edges": [], "settle": [], "serial": [1, 1]}
    local = {"api": {"blue": ["172.30.2.16"], "green": ["172.30.2.24"]}}
    members = module.edge_members(SERVICES, local, groups, "prod", hostvars, "app-2")
    assert members["api"]["green"] == [{"name": "api-green", "address": "172.30.2.24", "port": 8000, "enabled_by": ""}]
    assert module.publish_address(groups, "prod", hostvars, "app-2") == ""
    with pytest.raises(AnsibleFilterError, match="slipway_rollout_batch_size 'x' is not a batch size"):
        module.rollout_hosts(groups, "prod", {**hostvars, "app-1": {"slipway_rollout_batch_size": "x"}})


# What the cluster rollout's begin and switch tasks register (a host's record is folded from them).
BEGIN, SWITCH = "__app_release_cluster_begin", "__app_release_cluster_switch"


def item(stdout: Any, rc: int = 0, **more: Any) -> dict[str, Any]:
    return {"__app_release_svc": {"name": "api"}, "rc": rc, "stdout": json.dumps(stdout), **more}


def test_records_verdicts_and_results_from_registered_loops() -> None:
    begun = contract.result("api", contract.CONTINUE, colour="green", todo=["backup", "migrate", "start"],
                            version="v2")
    hostvars: dict[str, dict[str, Any]] = {
        host: {BEGIN: {"results": [item(begun), {"skipped": True}]}} for host in ("app-1", "app-2")}
    hostvars["app-1"]["__app_release_cluster_backup"] = {
        "results": [{"__app_release_svc": {"name": "api"}, "rc": 2, "stderr": "pg_dump: refused"}]}
    verdict = module.cluster_verdict(hostvars, ["app-1", "app-2"], ["edge-1"], "api", "prepare")
    assert verdict["failed"] == [{"host": "app-1", "phase": "backup",
                                  "message": "backup on the data host failed (exit 2): pg_dump: refused"}]
    finished = contract.result("api", "failed", failed_phase="backup", message="from the host", version="v2")
    results = module.cluster_results([{"name": "api"}], hostvars, ["app-1", "app-2"], ["edge-1"], "app-2",
                                     [{"results": [item(finished, rc=1)]}, {"results": [{"skipped": True}]}])
    assert [(r["host"], r["result"], r["failed_phase"], r["version"]) for r in results] == [
        ("app-2", "failed", "backup", "v2")]
    assert results[0]["message"].startswith("api: the cluster rollout stopped")
    assert "app-1 failed in phase backup" in results[0]["message"]


def test_a_host_s_record_folds_its_registers_in_the_order_its_tasks_ran() -> None:
    """cluster_host_record: the begin's noop, then the begin again with --force (the later answer wins), then the
    gate; a register of another host or an unknown name counts for nothing."""
    noop = contract.result("api", "noop", colour="blue", version="v2")
    again = contract.result("api", contract.CONTINUE, colour="green", todo=["start", "health"], version="v2")
    gated = contract.result("api", contract.CONTINUE, colour="green", todo=["switch"], version="v2",
                            published=["10.0.1.11:20008"])
    hostvars = {"app-1": {BEGIN: {"results": [item(noop)]}, "__app_release_cluster_rebegin": {"results": [item(again)]},
                          "__app_release_cluster_start": {"results": [item(gated)]},
                          "__app_release_cluster": {"api": {"result": "failed"}}},
                "app-2": {BEGIN: {"results": [item(contract.result("api", "failed", failed_phase="lock"), rc=1)]}}}
    mine = module.cluster_host_record(hostvars, "app-1")["api"]
    assert (mine["phases"], mine["result"], mine["colour"], mine["published"]) == (
        ["begin", "start"], contract.CONTINUE, "green", ["10.0.1.11:20008"])
    assert module.cluster_host_record(hostvars, "edge-1") == {}


def test_an_item_the_host_did_not_answer_leaves_the_phase_unanswered() -> None:
    """An unreachable host's loop item (no rc, no answer) records nothing: the verdict names it as a host that did not
    answer, not as one that failed with an empty answer."""
    begun = contract.result("api", contract.CONTINUE, colour="green", todo=["switch"], version="v2")
    hostvars = {"app-1": {BEGIN: {"results": [item(begun)]}},
                "app-2": {BEGIN: {"unreachable": True, "results": [
                    {"__app_release_svc": {"name": "api"}, "unreachable": True, "msg": "ssh: connect timed out"}]}}}
    assert module.cluster_host_record(hostvars, "app-2") == {}
    verdict = module.cluster_verdict(hostvars, ["app-1", "app-2"], ["edge-1"], "api", "begin")
    assert verdict["failed"] == [{"host": "app-2", "phase": "begin", "message": (
        "did not answer in phase begin (unreachable, or its task did not run)")}]


def test_a_check_run_reports_the_plan() -> None:
    planned = contract.result("api", "planned", version="v2", message="would deploy v2")
    hostvars = {host: {BEGIN: {"results": [item(planned)]}} for host in ("app-1", "app-2")}
    results = module.cluster_results([{"name": "api"}], hostvars, ["app-1", "app-2"], ["edge-1"], "app-1",
                                     [{"results": [{"skipped": True}]}], "begin")
    assert [(r["result"], r["version"]) for r in results] == [("planned", "v2")]


def test_a_rollback_s_verdict_and_results_name_each_host_s_releases() -> None:
    """action `rollback` (playbooks/cluster/rollout.yml imported by rollback.yml): app hosts going back to different
    releases are refused, naming each; the results say the cluster rollback stopped."""
    hostvars = {host: {BEGIN: {"results": [item(contract.result(
        "api", contract.CONTINUE, colour="blue", version=kept, previous_version="v2"))]}}
        for host, kept in (("app-1", "v1"), ("app-2", "v0"))}
    verdict = module.cluster_verdict(hostvars, ["app-1", "app-2"], ["edge-1"], "api", "begin", "rollback")
    assert verdict["failed"][0]["host"] == "app-2"
    assert "app-1: back to v1 from v2; app-2: back to v0 from v2" in verdict["failed"][0]["message"]
    assert module.cluster_verdict(hostvars, ["app-1", "app-2"], ["edge-1"], "api", "begin")["go"] is True
    results = module.cluster_results([{"name": "api"}], hostvars, ["app-1", "app-2"], ["edge-1"], "app-1", [],
                                     "begin", "rollback")
    assert results[0]["message"].startswith("api: the cluster rollback stopped")
    with pytest.raises(AnsibleFilterError, match="cluster_verdict: unknown action 'undo'"):
        module.cluster_verdict(hostvars, ["app-1", "app-2"], ["edge-1"], "api", "begin", "undo")


def test_each_host_s_result_for_the_rollout_s_one_record() -> None:
    begun = contract.result("api", contract.CONTINUE, colour="green", todo=["start"], version="v2")
    hostvars: dict[str, dict[str, Any]] = {host: {BEGIN: {"results": [item(begun)]}} for host in ("app-1", "app-2")}
    assert module.cluster_hosts(hostvars, ["app-1", "app-2"], ["edge-1"], "api", "begin") == [
        {"host": "app-1", "phase": "begin", "result": "ok", "message": ""},
        {"host": "app-2", "phase": "begin", "result": "ok", "message": ""},
        {"host": "edge-1", "phase": "", "result": "not run", "message": ""}]
    with pytest.raises(AnsibleFilterError, match="cluster_hosts: unknown action 'undo'"):
        module.cluster_hosts(hostvars, ["app-1", "app-2"], ["edge-1"], "api", "begin", "undo")


def test_the_scrape_plan_names_each_app_host_s_published_colour_once_every_edge_switched() -> None:
    """cluster_scrape_plan: from the app hosts' answers after their gate (`published`), for each service that went
    live on every edge; nothing for a service that stopped."""
    apps, edges = ["app-1", "app-2"], ["edge-1"]
    hostvars: dict[str, Any] = {}
    for host, target in (("app-1", "10.0.1.11:20008"), ("app-2", "10.0.1.12:20056")):
        gated = json.dumps(contract.result("api", contract.CONTINUE, colour="green", version="v2.0.0",
                                           todo=["switch", "drain", "record"], published=[target]))
        hostvars[host] = {BEGIN: {"results": [{"__app_release_svc": {"name": "api"}, "rc": 0, "stdout": gated}]}}
    assert module.cluster_scrape_plan(hostvars, apps, edges, SERVICES) == []  # no edge switched yet
    hostvars["edge-1"] = {SWITCH: {"results": [{"__app_release_svc": {"name": "api"}, "rc": 0, "stdout": "{}"}]}}
    assert module.cluster_scrape_plan(hostvars, apps, edges, SERVICES) == [
        {"service": "api", "colour": "green", "version": "v2.0.0",
         "hosts": {"app-1": ["10.0.1.11:20008"], "app-2": ["10.0.1.12:20056"]}}]
    failed = {"results": [{"__app_release_svc": {"name": "api"}, "rc": 1, "stdout": "{}"}]}
    assert module.cluster_scrape_plan({**hostvars, "edge-1": {SWITCH: failed}}, apps, edges, SERVICES) == []
    with pytest.raises(AnsibleFilterError, match="cluster_scrape_plan: unknown action 'undo'"):
        module.cluster_scrape_plan(hostvars, apps, edges, SERVICES, "undo")


def test_each_play_s_hosts_from_the_app_hosts_records() -> None:
    """cluster_play_hosts: the common path (each begin started and gated) skips prepare and start; a failed gate
    skips the switch: no edge is touched."""
    rollout = module.rollout_hosts(GROUPS, "prod", HOSTVARS)
    gated = json.dumps(contract.result("api", contract.CONTINUE, colour="green", todo=["switch", "drain", "record"],
                                       version="v2", previous_version="v1"))
    hostvars: dict[str, Any] = {
        host: {BEGIN: {"results": [{"__app_release_svc": {"name": "api"}, "rc": 0, "stdout": gated}]}}
        for host in ("app-1", "app-2")}
    found = {phase: module.cluster_play_hosts(hostvars, rollout, phase) for phase in ("prepare", "start", "switch")}
    assert found == {"prepare": [], "start": [], "switch": ["edge-1"]}
    failed = json.dumps(contract.result("api", "failed", failed_phase="health", message="unhealthy"))
    hostvars["app-2"] = {BEGIN: {"results": [{"__app_release_svc": {"name": "api"}, "rc": 1, "stdout": failed}]}}
    assert module.cluster_play_hosts(hostvars, rollout, "switch") == []
    with pytest.raises(AnsibleFilterError, match="give rollout_hosts' answer"):
        module.cluster_play_hosts(hostvars, ["app-1"], "start")
    with pytest.raises(AnsibleFilterError, match="unknown phase 'begin'"):
        module.cluster_play_hosts(hostvars, rollout, "begin")


def test_each_app_host_s_result_says_its_own_failure_once() -> None:
    """Both app hosts failed their gate: each result names its own phase and reason and only names the other host
    (before, each said the whole verdict, so a report said every reason once per app host); the unlock task's filter
    gives the same from the verdict's failed list."""
    begun = contract.result("api", contract.CONTINUE, colour="green", todo=["start"], version="v2")
    why = {"app-1": "api-green is unhealthy: 503", "app-2": "api-green exited (status 3)"}
    hostvars: dict[str, dict[str, Any]] = {host: {
        BEGIN: {"results": [item(begun)]},
        "__app_release_cluster_start": {"results": [item(contract.result(
            "api", "failed", failed_phase="health", message=why[host], version="v2"), rc=1)]}}
        for host in ("app-1", "app-2")}
    apps = ["app-1", "app-2"]
    for host, other in (("app-1", "app-2"), ("app-2", "app-1")):
        [result] = module.cluster_results([{"name": "api"}], hostvars, apps, ["edge-1"], host, [], "start")
        assert (result["result"], result["failed_phase"]) == ("failed", "health")
        assert f"{host} failed in phase health: {why[host]}" in result["message"]
        assert f"{other} failed in phase health;" in result["message"] or result["message"].count(other) == 1
        assert why[other] not in result["message"]
    verdict = module.cluster_verdict(hostvars, apps, ["edge-1"], "api", "start")
    assert why["app-1"] in verdict["summary"] and why["app-2"] in verdict["summary"]
    assert module.cluster_host_failure(verdict["failed"], "api", "app-2", apps) == {
        "phase": "health", "message": module.cluster_results(
            [{"name": "api"}], hostvars, apps, ["edge-1"], "app-2", [], "start")[0]["message"]}
    with pytest.raises(AnsibleFilterError, match="cluster_host_failure: give the verdict's failed list, not str"):
        module.cluster_host_failure("app-1 failed", "api", "app-1", apps)


def settle_batch(*calls: tuple[str, int, Any]) -> dict[str, Any]:
    """An app host's settle item: a `slipway-release batch` answer, one (command, rc, answer) per call."""
    results = [{"argv": ["--root", "/var/lib/slipway", command, "api"], "rc": rc, "stdout": json.dumps(out),
                "stderr": "" if rc == 0 else f"{command} went wrong"} for command, rc, out in calls]
    return {"__app_release_svc": {"name": "api"}, "rc": next((c[1] for c in calls if c[1]), 0),
            "stdout": json.dumps({"results": results})}


def test_the_settle_s_batch_answers_for_the_service_through_its_drain_call() -> None:
    """The settle's item is a batch: its `run` call (the drain and record) is the host's answer in the record and the
    results; a batch without one (a noop: only the jobs' sync) records nothing for the service."""
    begun = contract.result("api", contract.CONTINUE, colour="green", todo=["switch"], version="v2")
    deployed = contract.result("api", "deployed", version="v2", message="v2 is live on green")
    failed = contract.result("api", "failed", failed_phase="drain", message="docker stop timed out", version="v2")
    drain = "__app_release_cluster_drain"
    hostvars = {
        "app-1": {BEGIN: {"results": [item(begun)]}, drain: {"results": [settle_batch(
            ("run", 0, deployed), ("record-rollout", 0, {}), ("jobs", 0, {"changed": False}))]}},
        "app-2": {BEGIN: {"results": [item(begun)]}, drain: {"results": [settle_batch(("run", 1, failed),
                                                                                     ("jobs", 0, {}))]}},
        "edge-1": {SWITCH: {"results": [item("")]}},
    }
    assert module.cluster_host_record(hostvars, "app-1")["api"]["phases"] == ["begin", "start", "settle"]
    assert module.cluster_hosts(hostvars, ["app-1", "app-2"], ["edge-1"], "api", "settle")[1] == {
        "host": "app-2", "phase": "drain", "result": "failed", "message": "docker stop timed out"}
    # Written in the first app host's settle call: every app host that passed so far is in phase settle.
    before = {h: {k: v for k, v in hostvars[h].items() if k != drain} for h in hostvars}
    assert [h["phase"] for h in module.cluster_hosts(before, ["app-1", "app-2"], ["edge-1"], "api", "switch",
                                                      "deploy", True)] == ["settle", "settle", "switch"]
    rollout = {"apps": ["app-1", "app-2"], "edges": ["edge-1"]}
    assert module.cluster_play_hosts(hostvars, rollout, "record-again") == ["app-1", "app-2"]
    results = module.cluster_results([{"name": "api"}], hostvars, ["app-1", "app-2"], ["edge-1"], "app-1",
                                     [{}, hostvars["app-1"][drain]])
    assert (results[0]["result"], results[0]["message"]) == ("deployed", "v2 is live on green")
    noop = {"app-1": {BEGIN: {"results": [item(contract.result("api", "noop", version="v2"))]},
                      drain: {"results": [settle_batch(("jobs", 0, {"changed": False}))]}}}
    assert module.cluster_host_record(noop, "app-1")["api"]["phases"] == ["begin"]


def test_batch_failed_names_the_calls_that_fail_the_settle() -> None:
    """The drain failing is no failure of the task (the release is live); the record or the jobs' sync failing is,
    and so is a batch that did not answer at all."""
    drain_failed = settle_batch(("run", 1, {}), ("record-rollout", 0, {}), ("jobs", 0, {}))
    assert module.batch_failed(drain_failed, ["record-rollout", "jobs"]) == []
    record_failed = settle_batch(("run", 0, {}), ("record-rollout", 2, {}), ("jobs", 0, {}))
    assert module.batch_failed(record_failed, ["record-rollout", "jobs"]) == [
        "record-rollout: exit 2: record-rollout went wrong"]
    crashed = {"rc": 1, "stdout": "", "stderr": "Traceback ...: MemoryError"}
    assert module.batch_failed(crashed, ["record-rollout", "jobs"]) == ["batch: exit 1: Traceback ...: MemoryError"]
    assert module.batch_failed({"rc": 0, "stdout": "{}"}, ["jobs"]) == []
