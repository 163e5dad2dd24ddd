"""slipway_core.cluster_rollout for a rollback across hosts (action `rollback`): the same phases and verdicts as a
deploy, plus: every app host goes back from the same live release to the same release or none does (each host's is
named), no host begins again, the version each edge confirms is the one rolled back to, and the summary says what
was undone. The schema revision an app host answers is kept in its record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from slipway_core import cluster_rollout as rules
from slipway_core import contract

APPS, EDGES = ["app-1", "app-2"], ["edge-1"]


def begun(version: str = "v1", previous: str = "v2", colour: str = "blue", result: str = contract.CONTINUE) -> str:
    """A rollback's `rollback --begin` answer: the kept release (version) on its colour, from the live one."""
    return json.dumps(contract.result("api", result, colour=colour, version=version, previous_version=previous,
                                      todo=["start", "health", "switch", "drain", "record"]))


def records(**answers: str) -> dict[str, Any]:
    return {host: rules.record(None, "begin", "api", answers.get(host, begun()), rc=0) for host in APPS}


def test_a_rollback_whose_app_hosts_agree_goes_on_with_the_kept_version_and_colour() -> None:
    found = rules.verdict(records(), APPS, EDGES, "api", "begin", "rollback")
    assert (found["go"], found["colour"], found["version"], found["rebegin"], found["failed"]) == (
        True, "blue", "v1", [], [])
    # Nothing to prepare: the first app host passes prepare without a record of it.
    assert rules.verdict(records(), APPS, EDGES, "api", "prepare", "rollback")["go"] is True


def test_app_hosts_whose_kept_or_live_releases_differ_are_refused_naming_each_host_s() -> None:
    found = rules.verdict(records(**{"app-2": begun(version="v0", previous="v2")}), APPS, EDGES, "api", "begin",
                          "rollback")
    assert found["go"] is False
    assert found["failed"] == [{"host": "app-2", "phase": "begin", "message": (
        "the app hosts' releases differ (app-1: back to v1 from v2; app-2: back to v0 from v2): a rollback goes back "
        "to the same release on every app host. Deploy the version you want instead (slipway deploy --service S "
        "--version V: the cluster rollout aligns them)")}]
    assert found["summary"].startswith("api: the cluster rollback stopped before any edge switched or was switched "
                                       "back: app-2 failed in phase begin: the app hosts' releases differ")
    assert found["summary"].endswith("What it started was stopped or removed on every app host that answered; the "
                                     "live release serves everywhere")
    live = rules.verdict(records(**{"app-1": begun(previous="v3")}), APPS, EDGES, "api", "begin", "rollback")
    assert "app-1: back to v1 from v3; app-2: back to v1 from v2" in live["failed"][0]["message"]


def test_a_rollback_already_live_on_one_app_host_only_is_refused_not_begun_again() -> None:
    """`rollback --to v1` where app-1 already runs v1 (noop there): a deploy would begin it again with --force; a
    rollback refuses, since the hosts' live releases differ."""
    noop = begun(version="v1", previous="v1", result="noop")
    found = rules.verdict(records(**{"app-1": noop}), APPS, EDGES, "api", "begin", "rollback")
    assert found["go"] is False and found["rebegin"] == []
    assert "app-1: back to v1 from v1; app-2: back to v1 from v2" in found["failed"][0]["message"]
    everywhere = rules.verdict(records(**{h: noop for h in APPS}), APPS, EDGES, "api", "begin", "rollback")
    assert (everywhere["noop"], everywhere["go"], everywhere["failed"]) == (True, False, [])


def test_a_failed_rollback_begin_on_one_host_is_named_with_its_phase() -> None:
    mine = records()
    failed = json.dumps(contract.result("api", "failed", failed_phase="preflight",
                                        message="api has no kept release to roll back to (live: v2)"))
    mine["app-2"] = rules.record(None, "begin", "api", failed, rc=1)
    found = rules.verdict(mine, APPS, EDGES, "api", "begin", "rollback")
    assert found["failed"] == [{"host": "app-2", "phase": "preflight",
                                "message": "api has no kept release to roll back to (live: v2)"}]


def test_a_deploy_s_verdict_names_its_version_and_keeps_its_summary() -> None:
    deploy = {h: rules.record(None, "begin", "api", begun(version="v3", previous="v2", colour="green"), rc=0)
              for h in APPS}
    found = rules.verdict(deploy, APPS, EDGES, "api", "begin")
    assert (found["version"], found["colour"]) == ("v3", "green")
    assert rules.summary("api", [{"host": "a", "phase": "health", "message": "m"}]).startswith(
        "api: the cluster rollout stopped")


def test_an_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown action 'undo'"):
        rules.verdict(records(), APPS, EDGES, "api", "begin", "undo")


def test_the_schema_revision_an_app_host_answers_is_kept_in_its_record() -> None:
    mine = rules.record(None, "prepare", "api", json.dumps(contract.result("api", contract.CONTINUE,
                                                                           migration_revision="0007")), rc=0)
    assert mine["api"]["migration_revision"] == "0007"
    later = rules.record(mine, "start", "api", json.dumps(contract.result("api", contract.CONTINUE)), rc=0)
    assert later["api"]["migration_revision"] == "0007"  # an empty answer does not erase it


def passed(phases: tuple[str, ...], hosts: list[str], mine: dict[str, Any] | None = None) -> dict[str, Any]:
    """Each of `hosts` passed `phases` (deploy answers)."""
    out = dict(mine or {})
    for host in hosts:
        for phase in phases:
            text = begun(version="v2", previous="v1", colour="green") if phase == "begin" else json.dumps(
                contract.result("api", "deployed" if phase == "settle" else contract.CONTINUE))
            out[host] = rules.record(out.get(host), phase, "api", text, rc=0)
    return out


def test_each_host_s_result_of_a_rollout_that_went_through() -> None:
    records = passed(("begin", "start", "settle"), APPS, passed(("switch",), EDGES))
    assert rules.host_results(records, APPS, EDGES, "api", "settle") == [
        {"host": "app-1", "phase": "settle", "result": "ok", "message": ""},
        {"host": "app-2", "phase": "settle", "result": "ok", "message": ""},
        {"host": "edge-1", "phase": "switch", "result": "ok", "message": ""}]


def test_settling_each_app_host_that_passed_so_far_is_in_phase_settle() -> None:
    """The record written in the first app host's settle call (through switch): the app hosts settle meanwhile."""
    records = passed(("begin", "start"), APPS, passed(("switch",), EDGES))
    assert rules.host_results(records, APPS, EDGES, "api", "switch", settling=True) == [
        {"host": "app-1", "phase": "settle", "result": "ok", "message": ""},
        {"host": "app-2", "phase": "settle", "result": "ok", "message": ""},
        {"host": "edge-1", "phase": "switch", "result": "ok", "message": ""}]
    assert rules.host_results(records, APPS, EDGES, "api", "switch")[0]["phase"] == "start"  # not settling: as known


def test_settling_a_stopped_rollout_says_where_each_host_stopped() -> None:
    """Nothing settles when the rollout stopped (an edge failed its switch): each host as it is."""
    records = passed(("begin", "start"), APPS)
    records["edge-1"] = rules.record(None, "switch", "api", json.dumps(contract.result(
        "api", "failed", failed_phase="switch", message="the edge refused")), rc=1)
    found = rules.host_results(records, APPS, EDGES, "api", "switch", settling=True)
    assert [(h["host"], h["phase"], h["result"]) for h in found] == [
        ("app-1", "start", "ok"), ("app-2", "start", "ok"), ("edge-1", "switch", "failed")]
    with pytest.raises(ValueError, match="settling is through switch"):
        rules.host_results(records, APPS, EDGES, "api", "settle", settling=True)


def test_each_host_s_result_names_the_one_that_failed_and_the_edge_that_did_not_run() -> None:
    records = passed(("begin",), APPS)
    records = passed(("start",), ["app-1"], records)
    failed = json.dumps(contract.result("api", "failed", failed_phase="health", message="GET /health answered 500"))
    records["app-2"] = rules.record(records["app-2"], "start", "api", failed, rc=1)
    assert rules.host_results(records, APPS, EDGES, "api", "settle", "rollback") == [
        {"host": "app-1", "phase": "start", "result": "ok", "message": ""},
        {"host": "app-2", "phase": "health", "result": "failed", "message": "GET /health answered 500"},
        {"host": "edge-1", "phase": "", "result": "not run", "message": ""}]
    records.pop("app-2")  # unreachable: no record at all
    found = rules.host_results(records, APPS, EDGES, "api", "settle")
    assert found[1] == {"host": "app-2", "phase": "begin", "result": "failed",
                        "message": "did not answer in phase begin (unreachable, or its task did not run)"}


def test_a_host_that_failed_after_the_verdict_s_phase_is_failed_too() -> None:
    """Every edge switched, but one app host's drain/record failed: its own answer names it."""
    records = passed(("begin", "start", "settle"), ["app-1"], passed(("begin", "start"), ["app-2"],
                                                                     passed(("switch",), EDGES)))
    drain = json.dumps(contract.result("api", "failed", failed_phase="drain", message="docker stop timed out"))
    records["app-2"] = rules.record(records["app-2"], "settle", "api", drain, rc=1)
    assert rules.host_results(records, APPS, EDGES, "api", "switch")[1] == {
        "host": "app-2", "phase": "drain", "result": "failed", "message": "docker stop timed out"}
