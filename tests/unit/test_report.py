"""Step summary (Markdown), step outputs (key=value), JSON and text reports."""

from __future__ import annotations

import json
from pathlib import Path

from slipway import report
from slipway.exitcodes import ExitCode
from slipway.results import Decision, ServiceResult

RESULT = ServiceResult(
    host="h1",
    service="notes-api",
    result="failed",
    version="v1.0.1",
    previous_version="v1.0.0",
    colour="blue",
    failed_phase="health",
    message="HTTP 500 | retried\n3 times",
    durations={"start": 2.0, "health": 30.0},
)
REPORT = report.Report(
    command="deploy",
    env="staging",
    run_id="abc123",
    decision=Decision(ExitCode.ROLLOUT_FAILED, "failed", "rollout failed, previous release still serving"),
    duration=41.25,
    results=[RESULT],
    phases=[("start", "ok", 2.0), ("health", "failed", 30.0)],
    errors=["[ERROR]: x"],
    run_url="https://github.com/acme/ops/actions/runs/7",
)


def test_markdown_summary() -> None:
    text = report.to_markdown(REPORT)
    assert text.startswith("### ❌ slipway deploy `staging`: failed")
    assert "(exit code 1, 41.2s)" in text
    assert (
        "| h1 | notes-api | failed | v1.0.1 | v1.0.0 | blue | health | 32.0s | HTTP 500 \\| retried 3 times |"
        in text
    )
    assert "| health | failed | 30.0 |" in text
    assert "- [ERROR]: x" in text
    assert "[Run](https://github.com/acme/ops/actions/runs/7)" in text


def test_outputs_are_single_line() -> None:
    assert report.outputs(REPORT) == {
        "outcome": "failed",
        "exit_code": "1",
        "env": "staging",
        "run_id": "abc123",
        "version": "v1.0.1",
        "services": "notes-api",
        "failed": "notes-api@h1",
        "duration": "41.2",
    }


def test_json_and_text() -> None:
    data = json.loads(report.to_json(REPORT))
    assert data["exit_code"] == 1
    assert data["results"][0]["failed_phase"] == "health"
    assert data["phases"][1] == {"phase": "health", "seconds": 30.0, "status": "failed"}
    text = report.to_text(REPORT)
    # The colour is the release's, beside its version (not beside the previous release's).
    assert "h1 notes-api: failed v1.0.1 on blue (was v1.0.0, 32.0s) failed in health" in text
    assert "colour" not in text
    assert text.endswith("exit code 1 after 41.2s\n")


def test_records_table() -> None:
    rep = report.Report(
        "status",
        "prod",
        "r",
        Decision(ExitCode.OK, "ok", "done"),
        1.0,
        records=[{"host": "h", "colour": "blue"}],
    )
    assert "| host | colour |" in report.to_markdown(rep)
    assert "host=h colour=blue" in report.to_text(rep)


def test_a_cluster_rollout_s_record_shows_each_host_s_result_on_one_line() -> None:
    hosts = [{"host": "app-1", "phase": "settle", "result": "ok", "message": ""},
             {"host": "app-2", "phase": "health", "result": "failed", "message": "GET /health | 500"}]
    rep = report.Report("history", "prod", "r", Decision(ExitCode.OK, "ok", "done"), 1.0,
                        records=[{"host": "app-1", "run_id": "r1", "hosts": hosts}])
    assert "hosts=app-1 settle ok; app-2 health failed: GET /health | 500" in report.to_text(rep)
    assert "| app-1 | r1 | app-1 settle ok; app-2 health failed: GET /health \\| 500 |" in report.to_markdown(rep)
    assert json.loads(report.to_json(rep))["records"][0]["hosts"] == hosts


def test_a_status_record_shows_its_workers_and_jobs_and_an_empty_list_as_nothing() -> None:
    """A status record's workers and scheduled jobs are lists of entries too (they showed as `workers=`, empty)."""
    workers = [{"name": "notes-api-blue-mailer", "worker": "mailer", "state": "running, healthy"}]
    jobs = [{"job": "digest", "schedule": "*/5 * * * *", "last_run": "2026-12-05T14:00:00Z", "last_result": "failed",
             "exit_code": 1, "failing": True, "skipped_last": False, "message": ""},
            {"job": "prune", "schedule": "@daily", "last_run": "", "last_result": "", "exit_code": None,
             "failing": False, "skipped_last": False, "message": ""}]
    rep = report.Report("status", "prod", "r", Decision(ExitCode.OK, "ok", "done"), 1.0, records=[
        {"service": "notes-api", "workers": workers, "jobs": jobs, "host": "vm-1"},
        {"service": "kite", "workers": [], "host": "vm-1"}])
    text = report.to_text(rep)
    assert "workers=notes-api-blue-mailer running, healthy" in text
    assert "jobs=digest failed at 2026-12-05T14:00:00Z FAILING; prune not run yet host=vm-1" in text
    assert "service=kite workers= host=vm-1" in text
    assert "| kite | - | - | vm-1 |" in report.to_markdown(rep)  # no workers, no jobs
    other = report.Report("status", "prod", "r", Decision(ExitCode.OK, "ok", "done"), 1.0,
                          records=[{"checks": [{"check": "disk", "free_mb": 512, "note": ""}]}])
    assert "checks=check=disk free_mb=512" in report.to_text(other)  # any other entry: its non-empty key=values


def test_github_files_are_appended_only_when_set(tmp_path: Path) -> None:
    summary, output = tmp_path / "summary.md", tmp_path / "output"
    summary.write_text("before\n")
    report.write_github(REPORT, {}, lambda s: s)
    assert not output.exists()
    env = {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output)}
    report.write_github(REPORT, env, lambda s: s.replace("notes-api", "***"))
    assert summary.read_text().startswith("before\n### ❌")
    assert "***" in summary.read_text()
    assert "outcome=failed\n" in output.read_text()
    assert "services=***\n" in output.read_text()


def test_run_url() -> None:
    env = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "a/b", "GITHUB_RUN_ID": "9"}
    assert report.run_url(env) == "https://github.com/a/b/actions/runs/9"
    assert report.run_url({}) == ""


def test_host_phases_in_rollout_order() -> None:
    """One Switch task spans health, switch, drain and record: the summary shows each from the host's durations."""
    done = ServiceResult(host="h2", service="jotter", result="deployed", version="v2", previous_version="v1",
                         colour="green", failed_phase="", message="ok",
                         durations={"drain": 0.61, "switch": 0.05, "lock": 0.0, "health": 0.7, "warm-up": 0.3})
    noop = ServiceResult(host="h2", service="lark", result="noop", version="v2", previous_version="v2",
                         colour="blue", failed_phase="", message="unchanged", durations={})
    both = report.Report(command="deploy", env="staging", run_id="r1", decision=REPORT.decision, duration=3.0,
                         results=[RESULT, done, noop])
    text = report.to_markdown(both)
    assert "| Host | Service | lock | start | health | switch | drain | warm-up |" in text
    assert "| h2 | jotter | 0.00 | - | 0.70 | 0.05 | 0.61 | 0.30 |" in text
    assert "| h1 | notes-api | - | 2.00 | 30.00 | - | - | - |" in text
    assert "| h2 | lark |" not in text.split("Seconds per phase on the host:")[1]
    assert "    host phases: lock 0.00s, health 0.70s, switch 0.05s, drain 0.61s, warm-up 0.30s" in report.to_text(both)
