"""Scheduled jobs on the host (slipway_core.host.jobs, job_records) against the fake host: a run is a one-off container
of the LIVE release with the live web container's environment, one run at a time (a second is recorded as skipped),
killed at its timeout, its exit status and the bounded tail of its output kept for the last runs, the metrics file
for node exporter's textfile collector, and `slipway status`'s view of a failing job. The one-off process is a
recorded fake runner, except in the timeout test, which runs a real process."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from world import SECRET, SERVICE, World

from slipway_core import contract, job_rules
from slipway_core.host import job_records, jobs, one_off, queries
from slipway_core.host.job_records import JobFiles
from slipway_core.host.main import release_parser

JOB = "nightly-report"
COMMAND = ["python", "-m", "app.report"]


class Runner:
    """A one-off runner: records each call and answers as scripted; `during` runs while the 'container' runs."""

    def __init__(self, code: int | None = 0, stdout: bytes = b"done\n", stderr: bytes = b"",
                 during: Any = None) -> None:
        self.answer = one_off.Finished(code, stdout, stderr)
        self.calls: list[tuple[list[str], dict[str, str], float]] = []
        self.during = during

    def __call__(self, argv: list[str], env: dict[str, str], timeout: float) -> one_off.Finished:
        self.calls.append((argv, env, timeout))
        if self.during is not None:
            self.during()
        return self.answer


def configure(world: World, timeout: int = 600, more: dict[str, Any] | None = None) -> JobFiles:
    """jobs.json as the app_release role writes it: the jobs and the release settings their containers get."""
    files = JobFiles(world.store())
    spec = world.spec("v2.0.0")
    data = {"jobs": {JOB: {"schedule": "*-*-* 03:00:00", "command": COMMAND, "timeout": timeout}, **(more or {})},
            "release": {k: spec[k] for k in ("network", "resources", "container")}}
    Path(files.definitions).write_text(json.dumps(data), encoding="utf-8")
    return files


def run(world: World, runner: Runner, job: str = JOB) -> dict[str, Any]:
    return jobs.run_job(world.docker, world.store(), job, world.clock, "timer", runner)


def test_a_job_runs_the_live_image_with_the_live_containers_environment(two_live: World) -> None:
    configure(two_live)
    runner = Runner(0, b"report sent\n")
    record = run(two_live, runner)
    argv, env, timeout = runner.calls[0]
    assert argv[-4:] == [two_live.docker.images[two_live.ref("v2.0.0")], *COMMAND]  # the live image's id
    assert argv[1:3] == ["run", "--rm"] and "--read-only" in argv and argv[
        argv.index("--cap-drop"):argv.index("--cap-drop") + 2] == ["--cap-drop", "ALL"]
    assert "slipway.role=job" in argv
    assert env["DATABASE_URL"] == SECRET and env["LOG_LEVEL"] == "info"  # the live web container's, secrets too
    assert not any(SECRET in arg for arg in argv)
    assert timeout == 600
    assert (record["result"], record["exit_code"], record["version"]) == ("ok", 0, "v2.0.0")
    assert record["output"] == "report sent\n" and record["trigger"] == "timer"
    assert SECRET not in json.dumps(JobFiles(two_live.store()).runs(JOB))  # the record keeps no environment


def test_a_second_run_while_one_runs_is_skipped_and_recorded(two_live: World) -> None:
    configure(two_live)
    inner: list[dict[str, Any]] = []
    runner = Runner(0, during=lambda: inner.append(run(two_live, Runner())))
    outer = run(two_live, runner)
    assert inner[0]["result"] == "skipped" and inner[0]["exit_code"] is None
    assert outer["result"] == "ok"
    assert len(runner.calls) == 1  # the skipped run started no container
    data = JobFiles(two_live.store()).runs(JOB)
    assert [r["result"] for r in data["runs"]] == ["ok", "skipped"]
    assert data["totals"] == {"ok": 1, "skipped": 1}
    assert run(two_live, Runner())["result"] == "ok"  # the lock went with the run


def test_a_run_past_its_timeout_is_killed_and_recorded_as_timed_out(two_live: World) -> None:
    configure(two_live, timeout=1)

    def sleeper(argv: list[str], env: dict[str, str], timeout: float) -> one_off.Finished:
        return one_off.run_process([sys.executable, "-c", "import time; time.sleep(30)"], {}, timeout)

    started = two_live.clock.monotonic()
    record = jobs.run_job(two_live.docker, two_live.store(), JOB, two_live.clock, "timer", sleeper)
    assert record["result"] == "timed-out" and record["exit_code"] == job_rules.JOB_EXIT_TIMED_OUT
    assert "killed after 1s" in record["message"]
    assert ("remove", f"{SERVICE}-job-{record['run_id']}"[:63]) in two_live.docker.calls  # its container goes
    assert two_live.clock.monotonic() - started < 30


def test_the_output_kept_is_its_bounded_tail(two_live: World) -> None:
    configure(two_live)
    record = run(two_live, Runner(0, b"x" * 100000 + b"THE END\n", b"warning\n"))
    assert len(record["output"].encode()) == job_rules.OUTPUT_TAIL
    assert record["output"].endswith("THE END\nwarning\n") and record["truncated"] is True


def test_only_the_last_runs_are_kept_but_every_run_is_counted(two_live: World) -> None:
    configure(two_live)
    for i in range(job_rules.RUNS_KEPT + 3):
        run(two_live, Runner(i % 2))
    data = JobFiles(two_live.store()).runs(JOB)
    assert len(data["runs"]) == job_rules.RUNS_KEPT
    assert data["runs"][0]["exit_code"] == (job_rules.RUNS_KEPT + 2) % 2  # newest first
    assert data["totals"] == {"ok": 12, "failed": 11}


def test_a_failing_job_is_a_problem_in_status_and_in_its_metrics(two_live: World, tmp_path: Path) -> None:
    files = configure(two_live, more={"cleanup": {"schedule": "hourly", "command": ["true"], "timeout": 60}})
    run(two_live, Runner(0))
    two_live.clock.advance(60)
    failed = run(two_live, Runner(3, b"", b"Traceback: boom\n"))
    assert failed["result"] == "failed" and failed["exit_code"] == 3 and failed["output"] == "Traceback: boom\n"

    item = queries.status(two_live.host, two_live.store())
    assert item["healthy"] is True  # the web process serves; the job is its own problem
    assert f"job {JOB} FAILING" in item["message"] and "(exit 3)" in item["message"]
    [cleanup, nightly] = item["jobs"]
    assert (cleanup["job"], cleanup["last_run"], cleanup["failing"]) == ("cleanup", "", False)
    assert (nightly["last_result"], nightly["exit_code"], nightly["failing"]) == ("failed", 3, True)

    textfile = tmp_path / "textfile"
    textfile.mkdir()
    path = job_records.write_metrics(files, str(textfile))
    assert os.path.basename(path) == f"slipway_jobs_{SERVICE}.prom" and os.listdir(textfile) == [
        os.path.basename(path)]
    text = Path(path).read_text(encoding="utf-8")
    labels = f'service="{SERVICE}",job="{JOB}"'
    assert f"slipway_job_last_exit_code{{{labels}}} 3\n" in text
    assert f"slipway_job_last_run_failed{{{labels}}} 1\n" in text
    assert f"slipway_job_last_run_timestamp_seconds{{{labels}}} {failed['started']}\n" in text
    assert f'slipway_job_runs_total{{{labels},result="ok"}} 1\n' in text
    assert f'slipway_job_runs_total{{{labels},result="failed"}} 1\n' in text
    assert f'slipway_job_runs_total{{service="{SERVICE}",job="cleanup",result="ok"}} 0\n' in text
    assert 'slipway_job_last_exit_code{service="notes-api",job="cleanup"}' not in text  # never ran: no last run
    assert text.count("# TYPE slipway_job_runs_total counter") == 1

    run(two_live, Runner(0))
    assert "FAILING" not in queries.status(two_live.host, two_live.store())["message"]  # it recovered


def test_without_a_running_live_web_container_the_run_fails_and_says_why(two_live: World) -> None:
    configure(two_live)
    two_live.docker.stop(contract.container_name(SERVICE, "green"), 1)
    runner = Runner(0)
    record = run(two_live, runner)
    assert record["result"] == "failed" and record["exit_code"] is None and not runner.calls
    assert "notes-api-green is not running" in record["message"]


def test_a_job_not_configured_on_this_host_is_refused_naming_the_ones_there(two_live: World) -> None:
    configure(two_live)
    with pytest.raises(jobs.NotConfigured, match=r"no job weekly on this host \(its jobs here: nightly-report\)"):
        run(two_live, Runner(), job="weekly")


def main(world: World, argv: list[str], runner: Runner, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    args = release_parser().parse_args(["--root", world.root, *argv])
    code = jobs.main(world.docker, world.root, args, world.clock, runner)
    return code, json.loads(capsys.readouterr().out)["job"]


def test_job_run_command_answers_json_and_exits_by_result(
    two_live: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(two_live)
    textfile = tmp_path / "prom"
    textfile.mkdir()
    code, record = main(two_live, ["job", "run", SERVICE, JOB, "--textfile-dir", str(textfile)], Runner(0), capsys)
    assert code == contract.EXIT_OK and record["result"] == "ok" and record["trigger"] == "manual"
    assert (textfile / f"slipway_jobs_{SERVICE}.prom").exists()
    code, record = main(two_live, ["job", "run", SERVICE, JOB, "--trigger", "timer", "--textfile-dir",
                                   str(tmp_path / "missing")], Runner(1), capsys)
    assert code == contract.EXIT_FAILED and record["result"] == "failed"
    assert "no metrics" in record["message"]
    code, record = main(two_live, ["job", "run", SERVICE, "nope"], Runner(0), capsys)
    assert code == contract.EXIT_USAGE and record["result"] == "refused"
    code, record = main(two_live, ["job", "run", "Bad_Name", JOB], Runner(0), capsys)
    assert code == contract.EXIT_USAGE and "not a service name" in record["message"]


def test_held_lock_is_released_when_its_holder_ends(tmp_path: Path) -> None:
    path = str(tmp_path / "jobs" / "x.lock")
    with job_records.held(path, wait=False) as first:
        assert first
        with job_records.held(path, wait=False) as second:
            assert not second
    with job_records.held(path, wait=False) as again:
        assert again
    assert io.open(path).read() == ""  # noqa: SIM115, UP020 - the lock file holds nothing
