"""Issue 14, item 9: `slipway unlock --env E --service S --reason TEXT` runs playbooks/unlock.yml for that service
whoever holds its lock, with the reason and the audit (ansible-runner faked: requests recorded, events replayed)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from test_cli import FakeRunner, invoke


def unlocked(service: str) -> dict[str, object]:
    return {
        "event": "playbook_on_stats",
        "event_data": {"failures": {}, "dark": {}, "artifact_data": {"slipway_unlocked": [
            {"host": "demo-1", "service": service, "released": "run r1 (alice on ci-7, deploy of v2.0.0)",
             "reason": "controller killed"}]}},
    }


def test_unlock_runs_the_unlock_playbook_with_the_reason(project: Path) -> None:
    runner = FakeRunner([unlocked("notes-api")])
    code, out, err, _ = invoke(
        ["unlock", "--env", "demo", "--service", "notes-api", "--reason", "controller killed",
         "--project-dir", str(project)],
        env={"USER": "erin"},
        runner=runner,
    )

    assert code == 0, err
    (request,) = runner.calls
    assert request.playbook == "playbooks/unlock.yml"
    assert request.extravars["service"] == "notes-api"
    assert request.extravars["slipway_unlock_force"] == "true"
    assert request.extravars["slipway_unlock_reason"] == "controller killed"
    assert request.extravars["slipway_audit_actor"] == "erin"
    assert "released=run r1 (alice on ci-7, deploy of v2.0.0)" in out


@pytest.mark.parametrize(
    ("reason", "problem"),
    [("", "reason '' is not valid"), ("x\ny", "is not valid"), ("{{ lookup('pipe','id') }}", "is not valid")],
)
def test_a_bad_reason_is_refused_before_any_host(project: Path, reason: str, problem: str) -> None:
    code, _out, err, runner = invoke(
        ["unlock", "--env", "demo", "--service", "notes-api", "--reason", reason, "--project-dir", str(project)]
    )
    assert code == 2
    assert problem in err
    assert runner.calls == []


def test_unlock_needs_a_service_and_a_reason(project: Path) -> None:
    for missing in (["--service", "notes-api"], ["--reason", "stuck"]):
        with pytest.raises(SystemExit) as exited:
            invoke(["unlock", "--env", "demo", *missing, "--project-dir", str(project)])
        assert exited.value.code == 2


def test_an_unknown_service_is_refused(project: Path) -> None:
    code, _out, err, runner = invoke(
        ["unlock", "--env", "demo", "--service", "nope", "--reason", "stuck", "--project-dir", str(project)]
    )
    assert code == 2
    assert "service 'nope' is not in" in err
    assert runner.calls == []


def test_the_unlock_after_a_cancel_says_why(project: Path) -> None:
    """A cancelled deploy releases its run's locks with a reason the history keeps."""
    runner = FakeRunner([], action=lambda: os.kill(os.getpid(), signal.SIGTERM))

    code, _out, _err, _ = invoke(["deploy", "--env", "demo", "--project-dir", str(project)], runner=runner)

    assert code == 3
    deploy, unlock = runner.calls
    assert unlock.playbook == "playbooks/unlock.yml"
    assert unlock.extravars["slipway_run_id"] == deploy.extravars["slipway_run_id"]
    assert unlock.extravars["slipway_unlock_reason"] == "the run was cancelled (SIGTERM or SIGINT)"
