"""slipway.core.last_answer: the host program's final answer among a rollout's registered calls."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import load_filter

from slipway_core import contract

answers = load_filter("answers")


def ran(answer: dict[str, object], rc: int = 0) -> dict[str, object]:
    return {"rc": rc, "stdout": json.dumps(answer), "changed": True}


SKIPPED = {"skipped": True, "changed": False, "skip_reason": "Conditional result was False"}


def test_the_newest_call_that_ran_has_the_last_word() -> None:
    begin = ran({"service": "api", "result": "continue", "todo": ["health", "switch"]})
    run = ran({"service": "api", "result": "deployed", "version": "v2.0.0", "colour": "green"})
    finish: dict[str, object] = {}  # never registered: no failure
    answer = answers.last_answer([finish, run, begin])
    assert (answer["result"], answer["version"], answer["colour"]) == ("deployed", "v2.0.0", "green")
    assert set(answer) == set(contract.RESULT_KEYS)


def test_a_skipped_call_is_passed_over() -> None:
    begin = ran({"service": "api", "result": "noop", "version": "v1.0.0"})
    answer = answers.last_answer([{}, SKIPPED, begin])
    assert (answer["result"], answer["version"]) == ("noop", "v1.0.0")


def test_a_failure_answers_through_finish() -> None:
    begin = ran({"service": "api", "result": "continue", "todo": ["health"]})
    run = ran({"service": "api", "result": "failed", "failed_phase": "health"}, rc=1)
    finish = ran({"service": "api", "result": "failed", "failed_phase": "health", "message": "unhealthy"})
    answer = answers.last_answer([finish, run, begin])
    assert (answer["failed_phase"], answer["message"]) == ("health", "unhealthy")


def test_an_answer_left_by_another_service_is_passed_over() -> None:
    """In the role's loop a rescue's registered result outlives its iteration: service a failed (finish ran), service
    b then deploys without a rescue, and b's report must be b's own answer."""
    stale_finish = ran({"service": "a", "result": "failed", "failed_phase": "health"})
    run = ran({"service": "b", "result": "deployed", "version": "v2.0.0"})
    answer = answers.last_answer([stale_finish, run, {}], "b")
    assert (answer["service"], answer["result"]) == ("b", "deployed")
    assert answers.last_answer([stale_finish], "b")["result"] == "unknown"


def test_no_answer_at_all_is_unknown() -> None:
    assert answers.last_answer([{}, SKIPPED, {}])["result"] == "unknown"
    garbled = {"rc": 0, "stdout": "Traceback (most recent call last):"}
    assert answers.last_answer([garbled])["result"] == "unknown"


def test_the_input_must_be_a_list() -> None:
    with pytest.raises(AnsibleFilterError, match="list of registered results"):
        answers.last_answer({"rc": 0})
    assert answers.FilterModule().filters() == {
        "last_answer": answers.last_answer,
        "history_records": answers.history_records,
        "unlocked": answers.unlocked,
    }
