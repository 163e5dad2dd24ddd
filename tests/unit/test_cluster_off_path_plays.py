"""slipway_core.cluster_rollout.play_hosts for the cluster rollout's plays off the common path (playbooks/cluster/
rollout.yml): begin again, switch back, remove the new colour and fail, record again. Each has a host only when one
must act, so the common path (begin -> switch -> settle) runs none of their tasks: a task that skips still costs a
worker per host."""

from __future__ import annotations

import json
from typing import Any

import pytest

from slipway_core import cluster_rollout as rules
from slipway_core import contract

APPS, EDGES = ["app-1", "app-2"], ["edge-1", "edge-2"]
GATED = ("switch", "drain", "record")


def begun(todo: tuple[str, ...] = GATED, result: str = contract.CONTINUE, colour: str = "green",
          previous: str = "v1") -> str:
    return json.dumps(contract.result("api", result, colour=colour, todo=list(todo), version="v2",
                                      previous_version=previous))


FAILED_GATE = json.dumps(contract.result("api", "failed", failed_phase="health", message="GET /health answered 500"))


def after_begin(*answers: tuple[str, str, int]) -> dict[str, Any]:
    return {host: rules.record(None, "begin", "api", text, rc=rc) for host, text, rc in answers}


def switched(records: dict[str, Any], *codes: tuple[str, int]) -> dict[str, Any]:
    """Each edge's record after its switch-over (its exit code: an edge answers no result)."""
    return {**records, **{edge: rules.record(records.get(edge), "switch", "api", "", rc=rc) for edge, rc in codes}}


def off_path(records: dict[str, Any], through: str = "switch", action: str = "deploy") -> dict[str, list[str]]:
    return {phase: rules.play_hosts(records, APPS, EDGES, phase, action, through) for phase in rules.OFF_PATH_PHASES}


def settled(records: dict[str, Any], *answers: tuple[str, str, int]) -> dict[str, Any]:
    """Each app host's record after its settle call (the drain's answer and exit code)."""
    return {**records, **{h: rules.record(records.get(h), "settle", "api", text, rc=rc) for h, text, rc in answers}}


DEPLOYED = json.dumps(contract.result("api", "deployed"))


NONE: dict[str, list[str]] = {"rebegin": [], "switch-back": [], "stopped": [], "record-again": []}


def test_the_common_path_runs_none_of_them() -> None:
    records = switched(after_begin(("app-1", begun(), 0), ("app-2", begun(), 0)), ("edge-1", 0), ("edge-2", 0))
    assert rules.verdict(records, APPS, EDGES, "api", "switch")["go"] is True
    # Each play's hosts are read where it runs: record-again's after the settle, the others' before it.
    assert off_path(settled(records, ("app-1", DEPLOYED, 0), ("app-2", DEPLOYED, 0))) == NONE


def test_a_noop_everywhere_runs_none_of_them() -> None:
    noop = begun((), result="noop")
    assert off_path(after_begin(("app-1", noop, 0), ("app-2", noop, 0)), through="begin") == NONE


def test_a_host_that_answered_noop_while_the_other_goes_on_begins_again_alone() -> None:
    records = after_begin(("app-1", begun((), result="noop", colour="blue"), 0), ("app-2", begun(), 0))
    assert rules.play_hosts(records, APPS, EDGES, "rebegin") == ["app-1"]
    records["app-1"] = rules.record(records["app-1"], "begin", "api", begun(), rc=0)  # begun again, gated
    assert rules.play_hosts(records, APPS, EDGES, "rebegin") == []


def test_a_gate_failing_on_one_app_host_removes_the_new_colour_on_every_app_host_and_switches_nothing_back() -> None:
    records = after_begin(("app-1", begun(), 0), ("app-2", FAILED_GATE, 1))
    assert off_path(records) == {**NONE, "stopped": APPS}


def test_an_app_host_that_did_not_answer_stops_the_rollout_everywhere() -> None:
    assert off_path(after_begin(("app-1", begun(), 0)))["stopped"] == APPS


def test_when_one_edge_fails_its_switch_only_the_edge_that_switched_switches_back() -> None:
    records = switched(after_begin(("app-1", begun(), 0), ("app-2", begun(), 0)), ("edge-1", 0), ("edge-2", 1))
    assert off_path(records) == {**NONE, "switch-back": ["edge-1"], "stopped": APPS}


def test_only_the_service_whose_switch_failed_switches_back_and_only_where_it_had_switched() -> None:
    records = switched(after_begin(("app-1", begun(), 0), ("app-2", begun(), 0)), ("edge-1", 0), ("edge-2", 1))
    for host in APPS:  # a second service, web, gated on both app hosts and switched on both edges
        records[host] = rules.record(records[host], "begin", "web", begun().replace('"api"', '"web"'), rc=0)
    for edge in EDGES:
        records[edge] = rules.record(records[edge], "switch", "web", "", rc=0)
    assert rules.switches_back(records, APPS, EDGES, "api") == ["edge-1"]
    assert rules.switches_back(records, APPS, EDGES, "web") == []
    assert rules.play_hosts(records, APPS, EDGES, "switch-back") == ["edge-1"]


def test_in_check_mode_only_a_failed_plan_fails_the_run() -> None:
    planned = begun((), result="planned")
    records = after_begin(("app-1", planned, 0), ("app-2", planned, 0))
    # Through begin (check mode: only `begin --plan` ran) nothing stopped; the phases after it never ran.
    assert rules.play_hosts(records, APPS, EDGES, "stopped", through="begin") == []
    assert rules.play_hosts(records, APPS, EDGES, "stopped", through="switch") == APPS
    failed = after_begin(("app-1", planned, 0), ("app-2", FAILED_GATE, 1))
    assert rules.play_hosts(failed, APPS, EDGES, "stopped", through="begin") == APPS


def test_a_rollback_takes_the_same_plays() -> None:
    records = after_begin(("app-1", begun(), 0), ("app-2", FAILED_GATE, 1))
    assert off_path(records, action="rollback")["stopped"] == APPS


def test_an_unknown_phase_names_every_play_that_may_be_skipped() -> None:
    with pytest.raises(ValueError, match="prepare, start, switch, rebegin, switch-back, stopped, record-again"):
        rules.play_hosts({}, APPS, EDGES, "settle")



def test_the_record_is_written_again_only_when_an_app_host_did_not_pass_its_settle() -> None:
    """The record, written by the first app host beside the other app hosts' settle, names them in phase settle: when
    one fails its drain or does not answer, every app host is in the play (the first still reachable writes again)."""
    records = switched(after_begin(("app-1", begun(), 0), ("app-2", begun(), 0)), ("edge-1", 0), ("edge-2", 0))
    assert off_path(settled(records, ("app-1", DEPLOYED, 0), ("app-2", DEPLOYED, 0)), through="switch") == NONE
    stop_failed = json.dumps(contract.result("api", "failed", failed_phase="drain", message="docker stop timed out"))
    assert off_path(settled(records, ("app-1", DEPLOYED, 0), ("app-2", stop_failed, 1)))["record-again"] == APPS
    assert off_path(settled(records, ("app-2", DEPLOYED, 0)))["record-again"] == APPS  # app-1 did not answer
    # A stopped rollout was recorded whole in the settle call (nothing settles): never again.
    stopped = switched(after_begin(("app-1", begun(), 0), ("app-2", begun(), 0)), ("edge-1", 0), ("edge-2", 1))
    assert off_path(stopped)["record-again"] == []
