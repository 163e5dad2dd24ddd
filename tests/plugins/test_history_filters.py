"""slipway.core.history_records and slipway.core.unlocked: what `slipway history` and `slipway unlock` report of
the host's answers (issue 14, items 4 and 9): the contract's HISTORY_SHOWN keys, the audit included."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import load_filter

from slipway_core import contract

answers = load_filter("answers")


def test_history_records_show_the_audit_of_each_line() -> None:
    line = {key: f"<{key}>" for key in contract.HISTORY_KEYS}
    old = {"time": "t0", "service": "api", "result": "deployed", "who": "runner"}  # written before the audit

    records = answers.history_records([line, old], "app-1")

    assert list(records[0]) == ["host", *contract.HISTORY_SHOWN]
    assert records[0]["actor"] == "<actor>"
    assert records[0]["approval"] == "<approval>"
    assert records[0]["reason"] == "<reason>"
    assert "durations" not in records[0]
    assert (records[1]["actor"], records[1]["commit"], records[1]["host"]) == ("runner", "", "app-1")


def test_the_one_record_of_a_cluster_rollout_shows_each_host_s_result() -> None:
    hosts = [{"host": "app-1", "phase": "settle", "result": "ok", "message": ""},
             {"host": "app-2", "phase": "health", "result": "failed", "message": "GET /health answered 500",
              "extra": "not shown"}]
    line = {**{key: f"<{key}>" for key in contract.HISTORY_KEYS}, "hosts": [*hosts, "not a host"]}

    (record,) = answers.history_records([line], "app-1")

    assert list(record) == ["host", *contract.HISTORY_SHOWN, "hosts"]
    assert record["hosts"] == [hosts[0], {k: v for k, v in hosts[1].items() if k != "extra"}]


def test_unlocked_names_the_lock_released() -> None:
    released = [{"service": "api", "note": "removed the unfinished api-blue",
                 "lock": {"run_id": "r1", "action": "deploy", "version": "v2", "since": "t",
                          "audit": {"actor": "alice", "controller": "ci-7"}}}]

    (record,) = answers.unlocked(released, "app-1", "killed")

    assert record == {"host": "app-1", "service": "api", "released": "run r1 (alice on ci-7, deploy of v2, since t)",
                      "note": "removed the unfinished api-blue", "reason": "killed"}


def test_bad_input() -> None:
    with pytest.raises(AnsibleFilterError):
        answers.history_records("x", "h")
    with pytest.raises(AnsibleFilterError):
        answers.unlocked({}, "h", "")
