"""`slipway job run --env E --service S --job J` with a FAKE ansible-runner (test_cli.FakeRunner: the request is
recorded, the host's `slipway_job` record replayed as the run's stats). Real runs: the host side in
tests/host/test_jobs.py, the timers in molecule/full_stack/tests/test_scheduled_jobs.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_cli import FakeRunner, invoke

PLAYBOOK = "- name: Nothing\n  hosts: localhost\n  gather_facts: false\n  tasks: []\n"


@pytest.fixture
def ops(project: Path) -> Path:
    (project / "playbooks/job.yml").write_text(PLAYBOOK, encoding="utf-8")
    return project


def record(result: str, code: int | None, **over: Any) -> dict[str, Any]:
    found = {"host": "demo-1", "service": "notes-api", "job": "nightly-report", "result": result, "exit_code": code,
             "seconds": 2.5, "output": "line 1\nline 2\n", "message": "", "trigger": "manual"}
    found.update(over)
    return {"event": "playbook_on_stats",
            "event_data": {"failures": {}, "dark": {}, "artifact_data": {"slipway_job": [found]}}}


def job_args(ops: Path, *extra: str) -> list[str]:
    return ["job", "run", "--env", "demo", "--service", "notes-api", "--job", "nightly-report", "--project-dir",
            str(ops), *extra]


def test_a_job_that_ran_exits_0_and_the_request_names_service_and_job(ops: Path) -> None:
    runner = FakeRunner([record("ok", 0)])
    code, out, _err, _ = invoke(job_args(ops, "--json"), runner=runner)
    assert code == 0, out
    data = json.loads(out)
    assert (data["command"], data["outcome"]) == ("job", "ran")
    assert "job notes-api/nightly-report on demo-1 ran: exit 0 in 2.5s" in data["reason"]
    (request,) = runner.calls
    assert request.playbook == "playbooks/job.yml"
    assert (request.extravars["service"], request.extravars["slipway_job"]) == ("notes-api", "nightly-report")


@pytest.mark.parametrize(("found", "outcome", "words"), [
    (record("failed", 3, output="Traceback\nValueError: boom\n"), "failed", "failed: exit 3; last output: "
                                                                            "Traceback ValueError: boom"),
    (record("timed-out", 124, message="killed after 60s (its timeout)"), "timed-out", "killed after 60s"),
    (record("skipped", None, message="a run of this job was still in progress"), "failed", "was skipped: a run"),
])
def test_a_job_that_did_not_succeed_exits_1_saying_why(ops: Path, found: dict[str, Any], outcome: str,
                                                        words: str) -> None:
    code, out, _err, _ = invoke(job_args(ops, "--json"), runner=FakeRunner([found]))
    data = json.loads(out)
    assert (code, data["outcome"]) == (1, outcome), out
    assert words in data["reason"]


def test_no_record_from_the_host_needs_a_person(ops: Path) -> None:
    empty = {"event": "playbook_on_stats", "event_data": {"failures": {}, "dark": {}, "artifact_data": {}}}
    code, out, _err, _ = invoke(job_args(ops), runner=FakeRunner([empty]))
    assert code == 3 and "reported no run of the job" in out


@pytest.mark.parametrize(("argv", "words"), [
    (["--job", "Nightly_Report"], "job 'Nightly_Report' is not a job name"),
    (["--service", "nope"], "nope"),
])
def test_bad_input_is_refused_before_any_host(ops: Path, argv: list[str], words: str) -> None:
    args = job_args(ops)
    for option, value in zip(argv[::2], argv[1::2], strict=True):
        args[args.index(option) + 1] = value
    runner = FakeRunner([record("ok", 0)])
    code, out, err, _ = invoke(args, runner=runner)
    assert code == 2 and words in out + err
    assert not runner.calls
