"""`slipway-release job run SERVICE JOB`: one run of a service's scheduled job, on the host the role installed its
systemd timer on (docs/services.md, "Scheduled jobs"). The timer's unit starts it; so do operators (`slipway job
run`, or `systemctl start slipway-job-<service>-<job>.service`).

- The job (its command and timeout) and the settings its container gets (network, limits, hardening, pinned
  hosts, mounts) are jobs.json's, written by the app_release role after the service's rollout (job_records).
- It runs as a one-off container of the service's LIVE release (one_off.one_off, as `slipway exec`): the live
  release's image (its id in state.json), and the environment of the live web container (its secrets included),
  read from the engine: the job sees what the web process sees, even after a rollback; no secret is stored for it.
- At most one run of a job at a time: the run holds an flock on jobs/<job>.lock; a run that finds it held does
  nothing and is recorded as `skipped`.
- Killed at its timeout (exit status 124, `timed-out`); its container removed either way.
- Its record (result ok|failed|timed-out|skipped, exit status, start, duration, the tail of its output) goes to
  jobs/<job>.json (the last job_rules.RUNS_KEPT), and the service's metrics to the node exporter's textfile
  directory (--textfile-dir), when it exists.

Answer: one JSON object on stdout, {"job": record}; exit 0 when the job ran and exited 0 or was skipped, 1 when it
failed, timed out or could not start (the record says which), 2 bad usage (unknown service or job).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

from slipway_core import contract, job_rules
from slipway_core.host import job_records, one_off, workers
from slipway_core.host.docker import Docker, DockerError, running
from slipway_core.host.job_records import JobFiles
from slipway_core.host.store import Store
from slipway_core.host.system import Clock

TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"  # the prometheus role's prometheus_node_exporter_textfile_dir
RELEASE_KEYS = ("network", "resources", "container", "pin_hosts", "mounts")


class NotConfigured(Exception):
    """The job is not one jobs.json lists on this host (exit 2)."""


def live_env(docker: Docker, store: Store, live: dict[str, Any]) -> dict[str, str]:
    """The environment of the live web container (its first replica; a worker-only service's first worker),
    secrets included; one_off.Refused when it does not run (a job runs beside the release it belongs to, not
    instead of it)."""
    name = workers.first_container(store.service, str(live.get("colour", "")), live)
    info = docker.inspect(name) if name else None
    if not running(info):
        raise one_off.Refused(f"the live container {name} is not running: the job runs with its environment; "
                              f"start it (or deploy {store.service}) and run the job again")
    pairs = ((info or {}).get("Config") or {}).get("Env") or []
    return dict(str(p).split("=", 1) for p in pairs if "=" in str(p))


def _output(record: dict[str, Any]) -> tuple[str, bool]:
    """stdout then stderr, as the job printed them, cut to the last OUTPUT_TAIL bytes."""
    text = str(record.get("stdout", "")) + str(record.get("stderr", ""))
    data = text.encode("utf-8", "replace")
    cut = len(data) > job_rules.OUTPUT_TAIL or bool(record.get("truncated"))
    return data[-job_rules.OUTPUT_TAIL:].decode("utf-8", "replace"), cut


def _result(answer: dict[str, Any]) -> str:
    if answer.get("timed_out"):
        return "timed-out"
    return "ok" if answer.get("exit_code") == 0 else "failed"


def run_job(  # noqa: PLR0917 - what `job run` was given
    docker: Docker, store: Store, job: str, clock: Clock, trigger: str = "manual",
    runner: one_off.Runner = one_off.run_process,
) -> dict[str, Any]:
    """One run of `job` (or a skipped one when a run holds its lock); its record, saved."""
    files = JobFiles(store)
    jobs = files.jobs()
    spec = (jobs.get("jobs") or {}).get(job_rules.check_job_name(job))
    if not isinstance(spec, dict):
        known = ", ".join(sorted(jobs.get("jobs") or {})) or "none"
        raise NotConfigured(f"{store.service} has no job {job} on this host (its jobs here: {known}); add it under "
                            f"jobs: in slipway_services and deploy {store.service}")
    started = clock.time()
    run_id = f"{job}-{clock.iso().replace('-', '').replace(':', '')}-{os.getpid()}"[:64]
    record: dict[str, Any] = {"job": job, "service": store.service, "run_id": run_id, "trigger": trigger,
                              "started": started, "started_at": clock.iso(), "command": list(spec["command"])}
    with job_records.held(files.lock(job), wait=False) as mine:
        if not mine:
            record.update(result="skipped", exit_code=None, seconds=0.0,
                          message="a run of this job was still in progress: this one did nothing")
        else:
            record.update(_run(docker, store, jobs, spec, run_id, runner))
            record["seconds"] = round(clock.time() - started, 1)
    job_records.save_run(files, record)
    return record


def _run(  # noqa: PLR0917 - one run's inputs
    docker: Docker, store: Store, jobs: dict[str, Any], spec: dict[str, Any], run_id: str, runner: one_off.Runner,
) -> dict[str, Any]:
    """The one-off container of the live release with the job's command; the run's part of the record."""
    try:
        live = store.live()
        if not live:
            raise one_off.Refused(f"{store.service} has no live release on this host; deploy it first")
        release = {k: v for k, v in (jobs.get("release") or {}).items() if k in RELEASE_KEYS}
        release.update(env=live_env(docker, store, live), secret_env={})
        release.setdefault("network", live.get("network") or "")
        name = f"{store.service}-job-{run_id}"[:63].rstrip("-_.")
        answer = one_off.one_off(docker, store, release, list(spec["command"]), run_id,
                                 float(spec.get("timeout") or job_rules.TIMEOUT_DEFAULT), runner, name=name, role="job")
    except (one_off.Refused, DockerError, contract.InputRefused) as err:
        return {"result": "failed", "exit_code": None, "output": "", "truncated": False,
                "message": f"the job could not start: {err}"}
    output, cut = _output(answer)
    result = _result(answer)
    return {
        "result": result, "exit_code": answer.get("exit_code"), "version": answer.get("version", ""),
        "output": output, "truncated": cut,
        "message": f"killed after {spec.get('timeout')}s (its timeout)" if result == "timed-out" else "",
    }


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `job` command of slipway-release: `job run SERVICE JOB`."""
    p = sub.add_parser("job", help="run a scheduled job of a service now (its timer's unit runs this)")
    p.add_argument("action", choices=["run"])
    p.add_argument("service")
    p.add_argument("job")
    p.add_argument("--trigger", default="manual", choices=["timer", "manual"], help="who started it (recorded)")
    p.add_argument("--textfile-dir", default=TEXTFILE_DIR,
                   help=f"the node exporter's textfile collector directory ({TEXTFILE_DIR}); skipped when missing")


def main(docker: Docker, root: str, args: argparse.Namespace, clock: Clock,
         runner: Callable[..., one_off.Finished] = one_off.run_process) -> int:
    """`slipway-release job run`: the record on stdout, the exit status of the docstring."""
    try:
        store = Store(root, contract.check_service_name(args.service), clock)
        record = run_job(docker, store, args.job, clock, args.trigger, runner)
    except (contract.InputRefused, NotConfigured) as err:
        print(f"slipway-release: job: {err}", file=sys.stderr)
        print(json.dumps({"job": {"service": args.service, "job": args.job, "result": "refused",
                                  "message": str(err)}}, sort_keys=True))
        return contract.EXIT_USAGE
    path = job_records.write_metrics(JobFiles(store), args.textfile_dir)
    if not path:
        record["message"] = (record.get("message") or "") + f" (no metrics: {args.textfile_dir} does not exist)"
    print(json.dumps({"job": record}, sort_keys=True))
    print(f"slipway-release: job {store.service}/{args.job}: {record['result']} (exit {record.get('exit_code')}, "
          f"{record.get('seconds', 0)}s)", file=sys.stderr)
    return contract.EXIT_OK if record["result"] in ("ok", "skipped") else contract.EXIT_FAILED
