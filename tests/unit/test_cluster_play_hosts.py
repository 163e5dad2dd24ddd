"""slipway_core.cluster_rollout.play_hosts and the gated begin (issue 12's speed target): the cluster rollout's common
path is begin (which starts and gates the new colour: `begin --gate-when-ready`) -> switch -> settle; the plays
between have hosts only when they have work. Every guarantee stays: migration once on the first app host, all app
hosts gated before any edge switches, no edge touched after a failure or a noop."""

from __future__ import annotations

import json
from typing import Any

import pytest

from slipway_core import cluster_rollout as rules
from slipway_core import contract

APPS, EDGES = ["app-1", "app-2"], ["edge-1"]
GATED = ("switch", "drain", "record")
UNGATED = ("start", "health", "switch", "drain", "record")


def begun(todo: tuple[str, ...] = GATED, result: str = contract.CONTINUE, colour: str = "green",
          previous: str = "v1", service: str = "api") -> str:
    return json.dumps(contract.result(service, result, colour=colour, todo=list(todo), version="v2",
                                      previous_version=previous))


def after_begin(*answers: tuple[str, str, int], service: str = "api") -> dict[str, Any]:
    """Each app host's record after the begin play: (host, its answer, exit code)."""
    return {host: rules.record(None, "begin", service, text, rc=rc) for host, text, rc in answers}


def hosts(records: dict[str, Any], action: str = "deploy") -> dict[str, list[str]]:
    return {phase: rules.play_hosts(records, APPS, EDGES, phase, action) for phase in rules.PLAY_PHASES}


def test_a_begin_that_started_and_gated_passed_the_start_phase_too() -> None:
    records = after_begin(("app-1", begun(), 0), ("app-2", begun(), 0))
    assert records["app-1"]["api"]["phases"] == ["begin", "start"]
    assert rules.verdict(records, APPS, EDGES, "api", "start")["go"] is True


@pytest.mark.parametrize("answer", [begun(UNGATED), begun(("image", *UNGATED)), begun((), result="noop"),
                                    begun((), result="planned")])
def test_anything_else_passed_only_the_begin(answer: str) -> None:
    assert rules.record(None, "begin", "api", answer, rc=0)["api"]["phases"] == ["begin"]


def test_the_common_path_is_begin_switch_settle() -> None:
    records = after_begin(("app-1", begun(), 0), ("app-2", begun(), 0))
    assert hosts(records) == {"prepare": [], "start": [], "switch": EDGES}


def played(records: dict[str, Any], phase: str, answer: str = "") -> list[str]:
    """The hosts of `phase`'s play, each recorded as having passed it (the host program's `continue`)."""
    found = rules.play_hosts(records, APPS, EDGES, phase)
    for host in found:
        records[host] = rules.record(records.get(host), phase, "api", answer or begun(GATED), rc=0)
    return found


def test_the_image_missing_on_the_first_app_host_prepares_there_and_starts_there_only() -> None:
    records = after_begin(("app-1", begun(("image", *UNGATED)), 0), ("app-2", begun(), 0))
    assert played(records, "prepare", begun(UNGATED)) == ["app-1"]
    assert played(records, "start") == ["app-1"]
    assert played(records, "switch") == EDGES


def test_a_migration_runs_once_on_the_first_app_host_then_every_app_host_starts() -> None:
    todo = ("backup", "migrate", *UNGATED)
    records = after_begin(("app-1", begun(todo), 0), ("app-2", begun(todo), 0))
    assert played(records, "prepare", begun(UNGATED)) == ["app-1"]
    assert played(records, "start") == APPS
    assert played(records, "switch") == EDGES


def test_a_failed_migration_starts_nothing_and_switches_no_edge() -> None:
    todo = ("backup", "migrate", *UNGATED)
    records = after_begin(("app-1", begun(todo), 0), ("app-2", begun(todo), 0))
    failed = json.dumps(contract.result("api", "failed", failed_phase="migrate", message="alembic exit 1"))
    records["app-1"] = rules.record(records["app-1"], "prepare", "api", failed, rc=1)
    assert (rules.play_hosts(records, APPS, EDGES, "start"), rules.play_hosts(records, APPS, EDGES, "switch")) == (
        [], [])
    # The verdict names it (before this fix the emptied todo read as "nothing to prepare": go on, start everywhere).
    found = rules.verdict(records, APPS, EDGES, "api", "switch")
    assert found["go"] is False
    assert found["failed"] == [{"host": "app-1", "phase": "migrate", "message": "alembic exit 1"}]


def test_after_the_start_play_every_edge_switches_when_every_app_host_passed() -> None:
    records = after_begin(("app-1", begun(UNGATED), 0), ("app-2", begun(), 0))
    assert rules.play_hosts(records, APPS, EDGES, "start") == ["app-1"]
    records["app-1"] = rules.record(records["app-1"], "start", "api", begun(GATED), rc=0)
    assert rules.play_hosts(records, APPS, EDGES, "switch") == EDGES


def test_a_gate_failing_on_one_app_host_switches_no_edge() -> None:
    failed = json.dumps(contract.result("api", "failed", failed_phase="health", message="GET /health answered 500"))
    records = after_begin(("app-1", begun(), 0), ("app-2", failed, 1))
    assert hosts(records) == {"prepare": [], "start": [], "switch": []}
    found = rules.verdict(records, APPS, EDGES, "api", "switch")
    assert found["failed"] == [{"host": "app-2", "phase": "health", "message": "GET /health answered 500"}]


def test_a_gate_failing_in_the_start_play_switches_no_edge() -> None:
    records = after_begin(("app-1", begun(UNGATED), 0), ("app-2", begun(), 0))
    failed = json.dumps(contract.result("api", "failed", failed_phase="health", message="unhealthy"))
    records["app-1"] = rules.record(records["app-1"], "start", "api", failed, rc=1)
    assert rules.play_hosts(records, APPS, EDGES, "switch") == []


def test_an_app_host_that_did_not_answer_stops_the_rollout_before_any_play() -> None:
    records = after_begin(("app-1", begun(), 0))
    assert hosts(records) == {"prepare": [], "start": [], "switch": []}


def test_a_noop_everywhere_runs_no_play_between() -> None:
    noop = begun((), result="noop")
    assert hosts(after_begin(("app-1", noop, 0), ("app-2", noop, 0))) == {"prepare": [], "start": [], "switch": []}


def test_a_noop_host_begun_again_with_force_gated_in_that_call() -> None:
    records = after_begin(("app-1", begun((), result="noop", colour="blue"), 0), ("app-2", begun(), 0))
    assert rules.verdict(records, APPS, EDGES, "api", "begin")["rebegin"] == ["app-1"]
    records["app-1"] = rules.record(records["app-1"], "begin", "api", begun(), rc=0)
    assert hosts(records) == {"prepare": [], "start": [], "switch": EDGES}


def test_an_app_host_without_a_release_starts_in_the_start_play() -> None:
    records = after_begin(("app-1", begun(), 0), ("app-2", begun(UNGATED, previous=""), 0))
    assert played(records, "prepare") == []
    assert played(records, "start") == ["app-2"]
    assert played(records, "switch") == EDGES


def test_a_rollback_never_prepares_and_starts_in_the_start_play() -> None:
    records = after_begin(("app-1", begun(("image", *UNGATED)), 0), ("app-2", begun(UNGATED), 0))
    assert rules.play_hosts(records, APPS, EDGES, "prepare", "rollback") == []
    records = after_begin(("app-1", begun(UNGATED), 0), ("app-2", begun(UNGATED), 0))
    assert hosts(records, "rollback")["start"] == APPS


def test_one_service_going_on_is_enough_for_its_plays() -> None:
    records = after_begin(("app-1", begun(), 0), ("app-2", begun(), 0))
    for host in APPS:
        records[host] = rules.record(records[host], "begin", "web", begun(UNGATED, service="web"), rc=0)
    assert hosts(records) == {"prepare": [], "start": APPS, "switch": EDGES}


def test_only_the_plays_between_are_asked_for() -> None:
    with pytest.raises(ValueError, match="unknown phase 'settle'"):
        rules.play_hosts({}, APPS, EDGES, "settle")
