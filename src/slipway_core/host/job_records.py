"""What a host keeps of a service's scheduled jobs, and the only code that writes it (docs/services.md, "Scheduled
jobs"):

<service>/jobs.json           the jobs (schedule, command, timeout) and the release settings their containers get
                              (network, limits, hardening), written by the app_release role
<service>/jobs/<job>.lock     flock held by the run in progress (a second run finds it held: skipped)
<service>/jobs/<job>.json     the last job_rules.RUNS_KEPT runs, newest first (result, exit status, times, the tail
                              of the output), and the count of runs by result since the first
<textfile dir>/slipway_jobs_<service>.prom   the Prometheus metrics of every job of the service (node exporter's
                              textfile collector)

A run's record never holds the container's environment: only what the job printed, cut to its last
job_rules.OUTPUT_TAIL bytes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import IO, Any, Iterator

from slipway_core import job_rules
from slipway_core.host.store import Store
from slipway_core.host.system import iso_time, read_json, write_json, write_text

METRICS = (
    ("slipway_job_last_exit_code", "gauge", "Exit status of the job's last run (124: killed at its timeout, -1: it "
     "could not start); skipped runs do not count."),
    ("slipway_job_last_run_timestamp_seconds", "gauge", "When the job's last run (not a skipped one) started."),
    ("slipway_job_last_run_failed", "gauge", "1 when the job's last run failed or timed out, else 0."),
    ("slipway_job_runs_total", "counter", "Runs of the job on this host by result (ok, failed, timed-out, skipped)."),
)


class JobFiles:
    """The paths of one service's jobs on this host."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.definitions = os.path.join(store.paths.dir, "jobs.json")
        self.dir = os.path.join(store.paths.dir, "jobs")

    def lock(self, job: str) -> str:
        return os.path.join(self.dir, f"{job_rules.check_job_name(job)}.lock")

    def record(self, job: str) -> str:
        return os.path.join(self.dir, f"{job_rules.check_job_name(job)}.json")

    def jobs(self) -> dict[str, Any]:
        """The jobs.json the role wrote ({jobs: {name: {schedule, command, timeout}}, release: {...}}), or {}."""
        return read_json(self.definitions) or {}

    def runs(self, job: str) -> dict[str, Any]:
        return read_json(self.record(job)) or {"job": job, "runs": [], "totals": {}}


@contextlib.contextmanager
def held(path: str, wait: bool) -> Iterator[bool]:
    """An flock on `path` for the block: True when taken, False when another process holds it and not `wait`."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    handle: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed below, which drops the flock
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        handle.close()


def save_run(files: JobFiles, record: dict[str, Any]) -> dict[str, Any]:
    """Add `record` to its job's runs (the last RUNS_KEPT kept) and count it; returns the job's runs."""
    job = str(record["job"])
    with held(files.record(job) + ".lock", wait=True):  # a skipped run may be recorded while a run ends
        data = files.runs(job)
        runs = [record, *[r for r in data.get("runs") or [] if isinstance(r, dict)]][: job_rules.RUNS_KEPT]
        totals = {k: int(v) for k, v in (data.get("totals") or {}).items() if k in job_rules.RESULTS}
        totals[str(record["result"])] = totals.get(str(record["result"]), 0) + 1
        data = {"job": job, "runs": runs, "totals": totals}
        write_json(files.record(job), data, 0o600)
    return data


def last_run(data: dict[str, Any]) -> dict[str, Any] | None:
    """The newest run that ran (skipped ones are not a job's last run), or None."""
    return next((r for r in data.get("runs") or [] if isinstance(r, dict) and r.get("result") != "skipped"), None)


def failing(run: dict[str, Any] | None) -> bool:
    return run is not None and run.get("result") in ("failed", "timed-out")


def _labels(service: str, job: str, **more: str) -> str:
    pairs = {"service": service, "job": job, **more}
    return ",".join(f'{k}="{v}"' for k, v in pairs.items())  # names only: [a-z0-9-], nothing to escape


def metrics_text(files: JobFiles) -> str:
    """The textfile collector's file for every job of the service that jobs.json lists."""
    service = files.store.service
    lines: dict[str, list[str]] = {name: [] for name, _, _ in METRICS}
    for job in sorted(files.jobs().get("jobs") or {}):
        data = files.runs(job)
        run = last_run(data)
        if run is not None:
            code = run.get("exit_code")
            lines["slipway_job_last_exit_code"].append(
                f"slipway_job_last_exit_code{{{_labels(service, job)}}} {code if isinstance(code, int) else -1}")
            lines["slipway_job_last_run_timestamp_seconds"].append(
                f"slipway_job_last_run_timestamp_seconds{{{_labels(service, job)}}} {float(run.get('started') or 0)}")
            lines["slipway_job_last_run_failed"].append(
                f"slipway_job_last_run_failed{{{_labels(service, job)}}} {int(failing(run))}")
        totals = data.get("totals") or {}
        for result in job_rules.RESULTS:
            lines["slipway_job_runs_total"].append(
                f"slipway_job_runs_total{{{_labels(service, job, result=result)}}} {int(totals.get(result, 0))}")
    out = []
    for name, kind, text in METRICS:
        out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *lines[name]]
    return "\n".join(out) + "\n"


def write_metrics(files: JobFiles, textfile_dir: str) -> str:
    """Rewrite the service's metrics file in `textfile_dir` (atomically: the collector never reads half a file);
    '' when the directory does not exist (no node exporter collects it: said in the run's message)."""
    if not textfile_dir or not os.path.isdir(textfile_dir):
        return ""
    path = os.path.join(textfile_dir, f"slipway_jobs_{files.store.service}.prom")
    write_text(path, metrics_text(files), 0o644)  # the node exporter runs as another user
    return path


def summary(files: JobFiles) -> list[dict[str, Any]]:
    """`slipway status`'s view of each job jobs.json lists: its schedule, its last run and whether it fails."""
    out = []
    jobs = files.jobs().get("jobs") or {}
    for job in sorted(jobs):
        data = files.runs(job)
        run = last_run(data)
        newest = next(iter(data.get("runs") or []), None)
        out.append({
            "job": job,
            "schedule": str((jobs[job] or {}).get("schedule", "")),
            "last_run": iso_time(float(run["started"])) if run and run.get("started") else "",
            "last_result": str((run or {}).get("result", "")),
            "exit_code": (run or {}).get("exit_code"),
            "failing": failing(run),
            "skipped_last": bool(newest and newest.get("result") == "skipped"),
            "message": str((run or {}).get("message", ""))[:300],
        })
    return out


def annotate(item: dict[str, Any], store: Store) -> None:
    """Add the service's jobs to its status record (`jobs`), and a failing job to its message."""
    jobs = summary(JobFiles(store))
    if not jobs:
        return
    item["jobs"] = jobs
    for job in jobs:
        if job["failing"]:
            item["message"] = (f"{item.get('message', '')}; job {job['job']} FAILING: its last run at "
                               f"{job['last_run']} {job['last_result']} (exit {job['exit_code']})").lstrip("; ")
