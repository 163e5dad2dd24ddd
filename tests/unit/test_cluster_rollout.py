"""slipway_core.cluster_rollout: each host's record of the phases it passed, and the verdict the cluster rollout's
plays take between phases: go on, noop (every app host), or failed naming the host and the phase (a host that did
not answer is named as such), with the noop hosts begun again when others go on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from slipway_core import cluster_rollout as rules
from slipway_core import contract

APPS, EDGES = ["app-1", "app-2"], ["edge-1"]


def answer(result: str, **fields: Any) -> str:
    return json.dumps(contract.result("api", result, **fields))


def begun(colour: str = "green", todo: tuple[str, ...] = ("start", "health", "switch", "drain", "record"),
          result: str = contract.CONTINUE) -> str:
    return answer(result, colour=colour, todo=list(todo), version="v2", previous_version="v1")


def through(phase: str, **over: dict[str, Any]) -> dict[str, Any]:
    """Every host passed every phase up to `phase`, unless `over` gives a host's record."""
    records: dict[str, Any] = {}
    for name in rules.PHASES[: rules.PHASES.index(phase) + 1]:
        hosts = EDGES if name == "switch" else APPS[:1] if name == "prepare" else APPS
        for host in hosts:
            out = begun() if name == "begin" else answer("deployed" if name == "settle" else contract.CONTINUE)
            records[host] = rules.record(records.get(host), name, "api", out, rc=0)
    return {**records, **over}


def test_every_host_through_each_phase_goes_on_with_the_one_new_colour() -> None:
    for phase in rules.PHASES:
        found = rules.verdict(through(phase), APPS, EDGES, "api", phase)
        assert (found["go"], found["noop"], found["failed"], found["colour"]) == (True, False, [], "green"), phase


def test_the_first_app_host_with_nothing_to_prepare_passes_prepare() -> None:
    records = {host: rules.record(None, "begin", "api", begun(), rc=0) for host in APPS}
    assert rules.verdict(records, APPS, EDGES, "api", "prepare")["go"] is True
    records = {host: rules.record(None, "begin", "api", begun(todo=("image", "start")), rc=0) for host in APPS}
    found = rules.verdict(records, APPS, EDGES, "api", "prepare")
    assert found["failed"] == [{"host": "app-1", "phase": "prepare", "message": (
        "did not answer in phase prepare (unreachable, or its task did not run)")}]


def test_a_health_failure_on_one_app_host_names_it_and_the_phase() -> None:
    records = through("prepare")
    records["app-1"] = rules.record(records["app-1"], "start", "api", answer(contract.CONTINUE), rc=0)
    failed = answer("failed", failed_phase="health", message="GET /health answered 500")
    records["app-2"] = rules.record(records["app-2"], "start", "api", failed, rc=1)
    found = rules.verdict(records, APPS, EDGES, "api", "switch")
    assert found["go"] is False
    assert found["failed"] == [{"host": "app-2", "phase": "health", "message": "GET /health answered 500"}]
    assert "app-2 failed in phase health: GET /health answered 500" in found["summary"]
    assert "before any edge switched" in found["summary"]


def test_an_app_host_that_did_not_answer_is_named() -> None:
    records = through("prepare")
    records["app-1"] = rules.record(records["app-1"], "start", "api", answer(contract.CONTINUE), rc=0)
    found = rules.verdict(records, APPS, EDGES, "api", "start")
    assert found["failed"] == [{"host": "app-2", "phase": "start",
                                "message": "did not answer in phase start (unreachable, or its task did not run)"}]


def test_a_failed_edge_stops_the_rollout() -> None:
    records = through("start")
    records["edge-1"] = rules.record(None, "switch", "api", "", rc=1,
                                     stderr="slipway-proxy: confirm failed; switched back")
    found = rules.verdict(records, APPS, EDGES, "api", "settle")
    assert found["failed"] == [{"host": "edge-1", "phase": "switch",
                                "message": "slipway-proxy: confirm failed; switched back"}]


def test_noop_only_when_every_app_host_is() -> None:
    noop = begun(colour="blue", todo=(), result="noop")
    records = {host: rules.record(None, "begin", "api", noop, rc=0) for host in APPS}
    assert rules.verdict(records, APPS, EDGES, "api", "settle")["noop"] is True
    records["app-2"] = rules.record(None, "begin", "api", begun(), rc=0)
    found = rules.verdict(records, APPS, EDGES, "api", "begin")
    assert (found["go"], found["rebegin"], found["colour"]) == (True, ["app-1"], "green")
    assert rules.verdict(records, APPS, EDGES, "api", "start")["failed"][0]["message"] == (
        "app-1 did not begin again with --force")
    records["app-1"] = rules.record(records["app-1"], "begin", "api", begun(), rc=0)  # begun again, with --force
    assert rules.verdict(records, APPS, EDGES, "api", "begin")["rebegin"] == []


def test_app_hosts_that_would_start_different_colours_are_refused() -> None:
    records = {"app-1": rules.record(None, "begin", "api", begun("green"), rc=0),
               "app-2": rules.record(None, "begin", "api", begun("blue"), rc=0)}
    found = rules.verdict(records, APPS, EDGES, "api", "begin")
    assert found["go"] is False
    assert found["failed"][0]["message"].startswith(
        "the app hosts would start different colours (green on app-1, blue on app-2)")


def test_a_failed_begin_again_is_not_passed() -> None:
    first = rules.record(None, "begin", "api", begun(colour="blue", todo=(), result="noop"), rc=0)
    again = rules.record(first, "begin", "api", answer("failed", failed_phase="lock", message="held by r0"), rc=1)
    assert again["api"]["phases"] == []
    found = rules.verdict({"app-1": again, "app-2": through("begin")["app-2"]}, APPS, EDGES, "api", "start")
    assert found["failed"] == [{"host": "app-1", "phase": "lock", "message": "held by r0"}]


def test_an_unknown_phase_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown phase"):
        rules.record(None, "deploy", "api", "", rc=0)


def test_a_failed_step_the_controller_ran_fails_the_host_in_that_step() -> None:
    records = {host: rules.record(None, "begin", "api", begun(todo=("backup", "migrate", "start")), rc=0)
               for host in APPS}
    records["app-1"] = rules.record_failure(records["app-1"], "prepare", "api", "backup", "  ")
    found = rules.verdict(records, APPS, EDGES, "api", "start")
    assert found["failed"] == [{"host": "app-1", "phase": "backup", "message": "backup failed"}]


def test_an_app_host_added_to_the_cluster_begins_again_with_the_others_colour() -> None:
    """app-1 has v1 live on blue (starts green); app-2 was just added (no release: would start blue)."""
    records = {"app-1": rules.record(None, "begin", "api", begun("green"), rc=0),
               "app-2": rules.record(None, "begin", "api", answer(contract.CONTINUE, colour="blue", todo=["start"],
                                                                   version="v2"), rc=0)}
    found = rules.verdict(records, APPS, EDGES, "api", "begin")
    assert (found["go"], found["rebegin"], found["first_colour"], found["colour"]) == (True, ["app-2"], "green",
                                                                                      "green")
    # app-1 unchanged (noop: blue live): it begins again too, and the new host starts green with it.
    records["app-1"] = rules.record(None, "begin", "api", begun("blue", todo=(), result="noop"), rc=0)
    found = rules.verdict(records, APPS, EDGES, "api", "begin")
    assert (found["rebegin"], found["first_colour"]) == (["app-1", "app-2"], "green")
    # Not begun again (or still apart) by the next phase: refused, naming the colours.
    assert rules.verdict(records, APPS, EDGES, "api", "start")["go"] is False


def test_each_app_host_says_its_own_reason_and_only_names_the_other_app_hosts() -> None:
    """host_failure: the stopped rollout's phase and message on one app host. Both app hosts failed their gate: each
    says its own reason once and names the other; the rollout's summary keeps both reasons (the fail task says it
    once). An edge's failure, and an app host that did not answer (it reports nothing), are said in full."""
    failed = [{"host": "app-1", "phase": "health", "message": "GET /health answered 500"},
              {"host": "app-2", "phase": "start", "message": "no space left on device"}]
    one, two = (rules.host_failure("api", failed, host, APPS) for host in APPS)
    assert one["phase"] == "health" and two["phase"] == "start"
    assert "app-1 failed in phase health: GET /health answered 500; app-2 failed in phase start." in one["message"]
    assert "no space left" not in one["message"]
    assert "app-1 failed in phase health; app-2 failed in phase start: no space left on device." in two["message"]
    assert "answered 500" not in two["message"]
    assert one["message"].startswith("api: the cluster rollout stopped before any edge switched")
    assert one["message"].endswith("the previous release serves everywhere")
    summary = rules.summary("api", failed)
    assert "GET /health answered 500" in summary and "no space left on device" in summary

    # app-2 failed alone: app-1 (which passed) names it and its phase, app-2 says why.
    alone = failed[1:]
    assert rules.host_failure("api", alone, "app-1", APPS) == {"phase": "start", "message": (
        "api: the cluster rollout stopped before any edge switched or was switched back: app-2 failed in phase "
        "start. The new colour was removed from every app host that answered; the previous release serves everywhere")}
    # An edge, or an app host that did not answer: in full everywhere.
    missing = {"host": "app-2", "phase": "start", "message": "did not answer in phase start (unreachable, or its task "
                                                             "did not run)"}
    edge = {"host": "edge-1", "phase": "switch", "message": "the runtime API refused"}
    for other in (missing, edge):
        assert f"{other['host']} failed in phase {other['phase']}: {other['message']}" in rules.host_failure(
            "api", [other], "app-1", APPS)["message"]
    rollback = rules.host_failure("api", alone, "app-2", APPS, "rollback")["message"]
    assert rollback.startswith("api: the cluster rollback stopped") and "no space left on device" in rollback
    assert rules.host_failure("api", [], "app-1", APPS) == {}


def test_app_hosts_failing_in_the_start_play_are_all_named_when_the_first_had_nothing_to_prepare() -> None:
    """The start play (a colour not settled at begin: a first deploy) with both gates failing: the first app host,
    which had nothing to prepare, passed prepare; it was named as failing there, alone, and the loop stopped before
    the start phase could name app-2."""
    records = {host: rules.record(None, "begin", "api", begun(todo=("start", "health", "switch")), rc=0)
               for host in APPS}
    for host in APPS:
        failed = answer("failed", failed_phase="health", message=f"{host}: GET /health answered 500")
        records[host] = rules.record(records[host], "start", "api", failed, rc=1)
    found = rules.verdict(records, APPS, EDGES, "api", "start")
    assert found["failed"] == [{"host": h, "phase": "health", "message": f"{h}: GET /health answered 500"}
                               for h in APPS]
    # An image, backup or migration that failed on the first app host still fails prepare.
    records["app-1"] = rules.record(records["app-1"], "prepare", "api",
                                    answer("failed", failed_phase="migrate", message="alembic: error"), rc=1)
    assert rules.verdict(records, APPS, EDGES, "api", "start")["failed"] == [
        {"host": "app-1", "phase": "migrate", "message": "alembic: error"}]
