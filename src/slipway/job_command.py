"""`slipway job run --env E --service S --job J`: run a service's scheduled job now, on the host its timer runs on
(playbooks/job.yml; the host program's `job run`: slipway_core.host.jobs; docs/services.md "Scheduled jobs").

- Checked before any host is touched: the environment, the service and the job's name (the job rules). Whether the
  service has that job is the host's answer (its jobs.json, written by the last deploy): refused there, exit 3.
- The run is the timer's: the same lock (a run already in progress makes this one `skipped`), the same record kept
  on the host, the same metrics. It waits for the run to end (at most the job's timeout).
- Exit status: 0 the job ran and exited 0; 1 it failed, timed out or was skipped (the reason says which); 2 bad
  input; 3 it could not be asked (unreachable host, unknown job on the host).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from slipway.exitcodes import ExitCode, InputError
from slipway.results import Decision
from slipway_core import contract, job_rules

JOB_KEY = "slipway_job"  # what playbooks/job.yml reports: the host's record of the run, with its host
RAN = "ran"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["run"], help="run: start one run now and wait for it")
    parser.add_argument("--service", required=True, help="the service whose job to run")
    parser.add_argument("--job", required=True, help="the job's name (its key under jobs: in slipway_services)")


def extravars(args: argparse.Namespace) -> dict[str, str]:
    """playbooks/job.yml's variables; a bad job name refused (exit 2) before any host."""
    if args.command != "job":
        return {}
    try:
        return {"slipway_job": job_rules.check_job_name(args.job)}
    except contract.InputRefused as exc:
        raise InputError(str(exc)) from None


def records(artifact_data: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = artifact_data.get(JOB_KEY) or []
    return [dict(item) for item in raw if isinstance(item, Mapping)] if isinstance(raw, list) else []


def decide(decision: Decision, found: list[dict[str, Any]]) -> Decision:
    """From the host's record: ran (exit 0), failed, timed-out or skipped (exit 1); refused or nothing reported
    (exit 3); a run that did not end well keeps its own decision."""
    if decision.code != ExitCode.OK:
        return decision
    if not found:
        return Decision(ExitCode.NEEDS_PERSON, "needs-person", "the job host reported no run of the job")
    record = found[0]
    what = f"job {record.get('service', '?')}/{record.get('job', '?')} on {record.get('host', '?')}"
    result, code = record.get("result"), record.get("exit_code")
    if result == "ok":
        return Decision(ExitCode.OK, RAN, f"{what} ran: exit 0 in {record.get('seconds')}s")
    if result == "skipped":
        return Decision(ExitCode.ROLLOUT_FAILED, "failed", f"{what} was skipped: {record.get('message')}")
    if result in ("failed", "timed-out"):
        tail = " ".join(str(record.get("output", "")).strip().splitlines()[-3:])[-300:]
        why = record.get("message") or f"exit {code}"
        return Decision(ExitCode.ROLLOUT_FAILED, "timed-out" if result == "timed-out" else "failed",
                        f"{what} {result}: {why}" + (f"; last output: {tail}" if tail else ""))
    return Decision(ExitCode.NEEDS_PERSON, "needs-person", f"{what} did not run: {record.get('message')}")
