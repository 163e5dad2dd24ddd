"""`slipway status`: the exit code says whether every requested service is healthy and serving.

A status record (playbooks/status.yml, `slipway_status`) is `{host, service, colour, version, healthy, message}`;
`healthy` is the host program's boolean: the live colour's container runs, its Docker health check (if any) says
healthy, and the edge proxy routes the service to that colour. Anything but `true` is not healthy.

On the host that runs a service's scheduled jobs the record also lists them (`jobs`: {job, schedule, last_run,
last_result, exit_code, failing, ...}, docs/services.md "Scheduled jobs"): a job whose last run failed or timed
out is a problem too (exit 4), named with its service and host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from slipway.exitcodes import ExitCode
from slipway.results import Decision

MAX_NAMES = 10


def _why(record: Mapping[str, Any]) -> str:
    message = str(record.get("message") or "").strip()
    return f" ({message})" if message else ""


def _failing_jobs(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """`service@host: job J failed (exit N at T)` for each job whose last run failed or timed out."""
    out = []
    for record in records:
        jobs = record.get("jobs")
        for job in jobs if isinstance(jobs, list) else []:
            if isinstance(job, Mapping) and job.get("failing") is True:
                out.append(f"{record.get('service', '?')}@{record.get('host', '?')}: job {job.get('job', '?')} "
                           f"{job.get('last_result', 'failed')} (exit {job.get('exit_code')} at {job.get('last_run')})")
    return out


def decide(decision: Decision, records: Sequence[Mapping[str, Any]], service: str | None) -> Decision:
    """Exit 4 (unhealthy) when a reported service is not healthy or the requested one reported nothing; a run
    that did not end well keeps its own decision (unreachable, cancelled: exit 3)."""
    if decision.code != ExitCode.OK:
        return decision
    problems = [
        f"{record.get('service', '?')}@{record.get('host', '?')}{_why(record)}"
        for record in records
        if record.get("healthy") is not True
    ]
    problems += _failing_jobs(records)
    if service is not None and not any(record.get("service") == service for record in records):
        problems.append(f"{service}: no status reported")
    if not problems:
        return decision
    more = f" and {len(problems) - MAX_NAMES} more" if len(problems) > MAX_NAMES else ""
    return Decision(
        ExitCode.UNHEALTHY, "unhealthy", f"not healthy or not serving: {'; '.join(problems[:MAX_NAMES])}{more}"
    )
