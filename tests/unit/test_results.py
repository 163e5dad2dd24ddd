"""Results reported through set_stats, and the exit code each situation maps to."""

from __future__ import annotations

import pytest

from slipway.exitcodes import ExitCode
from slipway.results import RunFacts, ServiceResult, decide, parse_records, parse_results


def r(result: str, host: str = "h1", service: str = "api", **kw: str) -> ServiceResult:
    return ServiceResult(host=host, service=service, result=result, **kw)  # type: ignore[arg-type]


def test_results_are_parsed_and_sanitised() -> None:
    data = {
        "slipway_results": [
            {
                "host": "h1",
                "service": "api",
                "result": "deployed",
                "version": "v1.0.1",
                "durations": {"start": "2.5", "health": 3, "bad": "x"},
                "message": "line one\nline two",
            },
            {"host": "h2", "service": "api", "result": "exploded"},
            "not a map",
        ]
    }
    results = parse_results(data)
    assert [x.result for x in results] == ["deployed", "unknown"]
    assert results[0].durations == {"start": 2.5, "health": 3.0}
    assert results[0].duration == 5.5
    assert results[0].message == "line one line two"
    assert results[0].as_dict()["duration"] == 5.5
    assert parse_results({"slipway_results": "oops"}) == []
    assert parse_results({"slipway_results": [{"result": "noop", "message": "m" * 2000}]})[
        0
    ].message.endswith("...")


def test_records_keep_their_json_types() -> None:
    """Issue 14, item 10: `"healthy": true`, not `"True"`; text is still shortened to one line."""
    rows = parse_records(
        {"slipway_status": [{"host": "h\n x", "healthy": True, "n": 2, "v": None, "d": {"a": [1.5]}}, 3]},
        "slipway_status",
    )
    assert rows == [{"host": "h x", "healthy": True, "n": 2, "v": None, "d": {"a": [1.5]}}]
    assert parse_records({"slipway_status": {}}, "slipway_status") == []


@pytest.mark.parametrize(
    ("facts", "results", "code", "outcome"),
    [
        (RunFacts(status="successful"), [r("deployed"), r("noop", host="h2")], ExitCode.OK, "deployed"),
        (RunFacts(status="successful"), [r("noop")], ExitCode.OK, "noop"),
        (RunFacts(status="successful"), [], ExitCode.OK, "noop"),
        (
            RunFacts(status="failed", failures={"h1"}),
            [r("failed", failed_phase="health")],
            ExitCode.ROLLOUT_FAILED,
            "failed",
        ),
        (
            RunFacts(status="successful"),
            [r("failed"), r("deployed", host="h2")],
            ExitCode.ROLLOUT_FAILED,
            "failed",
        ),
        (RunFacts(status="failed", dark={"h2"}), [r("deployed")], ExitCode.NEEDS_PERSON, "needs-person"),
        (RunFacts(status="successful"), [r("unknown")], ExitCode.NEEDS_PERSON, "needs-person"),
        (RunFacts(status="failed", failures={"h2"}), [r("failed")], ExitCode.NEEDS_PERSON, "needs-person"),
        (RunFacts(status="failed"), [], ExitCode.NEEDS_PERSON, "needs-person"),
        (RunFacts(status="canceled", cancelled=True), [r("deployed")], ExitCode.NEEDS_PERSON, "needs-person"),
    ],
)
def test_decide(facts: RunFacts, results: list[ServiceResult], code: ExitCode, outcome: str) -> None:
    decision = decide(facts, results, rollout=True)
    assert (decision.code, decision.outcome) == (code, outcome)


def test_decide_names_the_cause() -> None:
    failed = decide(
        RunFacts(status="failed", failures={"h1"}), [r("failed", failed_phase="migrate")], rollout=True
    )
    assert "api@h1 (migrate)" in failed.reason
    outside = decide(RunFacts(status="failed", failures={"h9"}, errors=["[ERROR]: boom"]), [], rollout=True)
    assert "outside a rollout on h9: [ERROR]: boom" in outside.reason
    assert decide(RunFacts(status="successful"), [], rollout=False).outcome == "ok"
    assert "unreachable: h2" in decide(RunFacts(dark={"h2"}), [], rollout=False).reason


def test_a_refusal_by_the_playbooks_preflight_is_bad_input_with_its_whole_message() -> None:
    """The preflight play runs on localhost alone: its failure is a refusal of the request (exit 2), not a host
    that needs a person (it was exit 3, and the message was cut at 300 characters)."""
    fix = "put the edge, app and data roles on one host (docs/topology.md)"
    message = "a deploy across hosts is not supported yet (issue 12): environment production has edge e1, " + "x" * 300
    cause = f"Preflight | Check the environment's host roles: {message} {fix}"
    refused = decide(RunFacts(status="failed", failures={"localhost"}, failure_causes={"localhost": cause}), [],
                     rollout=True)

    assert (refused.code, refused.outcome) == (ExitCode.BAD_INPUT, "bad-input")
    assert refused.reason.startswith("refused before any host was touched: Preflight | Check the environment's")
    assert refused.reason.endswith(fix)
    # A failure on a managed host as well is not a refusal.
    both = decide(RunFacts(status="failed", failures={"localhost", "h1"}), [], rollout=True)
    assert both.code == ExitCode.NEEDS_PERSON


def test_decide_names_what_is_live_now() -> None:
    done = [ServiceResult(host="h1", service="notes-api", result="deployed", version="v1.0.1",
                          previous_version="v1.0.0", colour="green", failed_phase="", message=""),
            ServiceResult(host="h1", service="jotter", result="noop", version="v2.0.0",
                          previous_version="v2.0.0", colour="blue", failed_phase="", message="")]
    decision = decide(RunFacts(status="successful"), done, rollout=True)
    assert (decision.code, decision.outcome) == (ExitCode.OK, "deployed")
    assert decision.reason == "now live: notes-api@h1 v1.0.0 -> v1.0.1"
