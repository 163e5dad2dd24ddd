"""The rules of a service's scheduled jobs (the registry's `jobs:`, docs/services.md "Scheduled jobs"): a job's
name, schedule, command and timeout, and the systemd units that run it. Shared by the registry filter, the CLI
(`slipway job run`) and the host program (shipped in its zipapp). Standard library only, Python 3.8+.

A schedule is a systemd OnCalendar expression. Where `systemd-analyze` exists (the controller, when it runs systemd)
it is the judge (`check_schedule(..., analyze=True)`); elsewhere SCHEDULE_RE is: a shorthand (hourly, daily, ...) or
an optional weekday, an optional date and a time of `*`, numbers, ranges `..`, lists `,` and repetitions `/`, with
an optional time zone. That pattern accepts some expressions systemd refuses (`*-13-* 00:00`): systemd-analyze on
the host refuses them again when the role installs the timer.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from typing import Any, Mapping

from .contract import InputRefused, check_service_name, shown
from .operator_commands import check_exec_command

JOB_RE = re.compile(r"[a-z][a-z0-9-]{0,38}[a-z0-9]")
JOB_RULE = "use 2-40 lower-case letters, digits and '-', starting with a letter and not ending with '-'"
JOB_FIELDS = ("schedule", "command", "timeout")
TIMEOUT_DEFAULT = 3600
TIMEOUT_MAX = 86400
RUNS_KEPT = 20  # runs of each job whose exit status and output tail a host keeps
OUTPUT_TAIL = 16384  # bytes of a run's output (stdout, then stderr) kept: its last 16 KiB
JOB_EXIT_TIMED_OUT = 124  # the exit status recorded for a run killed at its timeout (timeout(1)'s)
RESULTS = ("ok", "failed", "timed-out", "skipped")

_SHORTHANDS = ("minutely", "hourly", "daily", "weekly", "monthly", "yearly", "annually", "quarterly", "semiannually")
_VALUE = r"(?:\*|[0-9]+(?:\.\.[0-9]+)?)(?:/[0-9]+)?"
_LIST = rf"{_VALUE}(?:,{_VALUE})*"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
_WEEKDAYS = rf"{_DAY}(?:(?:\.\.|,){_DAY})*"
_DATE = rf"{_LIST}-{_LIST}(?:-{_LIST}|~{_LIST})?"
_TIME = rf"{_LIST}:{_LIST}(?::{_LIST})?"
SCHEDULE_RE = re.compile(
    rf"(?:{'|'.join(_SHORTHANDS)})|(?:{_WEEKDAYS} )?(?:{_DATE} )?{_TIME}(?: (?:UTC|[A-Za-z]+/[A-Za-z_]+))?"
)
SCHEDULE_RULE = ('give a systemd OnCalendar expression, e.g. "*-*-* 03:00:00" (daily at 03:00), "Mon *-*-* 06:30", '
                 '"*:0/15" (every 15 minutes), "hourly"; check it with systemd-analyze calendar')


def check_job_name(value: Any) -> str:
    """A job's name (its key under `jobs:`); part of its systemd units' names."""
    if not isinstance(value, str) or not JOB_RE.fullmatch(value):
        raise InputRefused(f"job {shown(value)} is not a job name: {JOB_RULE}")
    return value


def check_schedule(value: Any, analyze: bool = False) -> str:
    """A systemd OnCalendar expression: systemd-analyze's verdict when `analyze` and it is installed, else
    SCHEDULE_RE (see the module's docstring)."""
    if not isinstance(value, str) or not value.strip() or len(value) > 200 or "\n" in value:
        raise InputRefused(f"schedule {shown(value)} is not valid: {SCHEDULE_RULE}")
    verdict = _analyze(value) if analyze else None
    if verdict is not None:
        if verdict:
            raise InputRefused(f"schedule {shown(value)} is not valid (systemd-analyze: {verdict}): {SCHEDULE_RULE}")
        return value
    if not SCHEDULE_RE.fullmatch(value.strip()):
        raise InputRefused(f"schedule {shown(value)} is not valid: {SCHEDULE_RULE}")
    return value


@functools.lru_cache(maxsize=256)  # the registry filter is evaluated at many tasks of one run
def _analyze(value: str) -> str | None:
    """systemd-analyze calendar's verdict on `value`: '' accepted, its complaint, or None when it cannot be asked."""
    tool = shutil.which("systemd-analyze")
    if not tool:
        return None
    try:
        proc = subprocess.run(  # noqa: S603 - systemd-analyze with the expression as one argument
            [tool, "calendar", "--", value], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode == 0:
        return ""
    return (proc.stderr.strip().splitlines() or ["refused"])[-1]


def check_timeout(value: Any) -> int:
    """Seconds a run may take before it is killed: a whole number from 1 to TIMEOUT_MAX."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= TIMEOUT_MAX:
        raise InputRefused(f"timeout {shown(value)} is not valid: give whole seconds from 1 to {TIMEOUT_MAX} "
                           f"(default {TIMEOUT_DEFAULT})")
    return value


def check_job(name: Any, job: Any, analyze: bool = False) -> dict[str, Any]:
    """One entry of `jobs:`, checked: {schedule, command, timeout}; InputRefused names the field and the fix."""
    check_job_name(name)
    if not isinstance(job, Mapping):
        raise InputRefused(f"{name}: must be a map with schedule, command and (optional) timeout")
    unknown = sorted(set(job) - set(JOB_FIELDS))
    if unknown:
        raise InputRefused(f"{name}.{unknown[0]}: unknown field; a job has {', '.join(JOB_FIELDS)}")
    try:
        schedule = check_schedule(job.get("schedule"), analyze)
    except InputRefused as err:
        raise InputRefused(f"{name}.schedule: {err}") from None
    try:
        command = check_exec_command(job.get("command"))
    except InputRefused as err:
        raise InputRefused(f"{name}.command: {err} (a job's command is a non-empty list of strings, e.g. "
                           "[python, -m, app.report])") from None
    try:
        timeout = check_timeout(job.get("timeout", TIMEOUT_DEFAULT))
    except InputRefused as err:
        raise InputRefused(f"{name}.timeout: {err}") from None
    return {"name": name, "schedule": schedule, "command": command, "timeout": timeout}


def check_jobs(value: Any, analyze: bool = False) -> list[dict[str, Any]]:
    """A service's `jobs:` map, checked, as a list sorted by name (none: [])."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        raise InputRefused("must be a map of job name -> {schedule, command, timeout}")
    return [check_job(name, value[name], analyze) for name in sorted(value, key=str)]


def unit_name(service: str, job: str) -> str:
    """The systemd units of a job, without their suffix: slipway-job-<service>-<job>(.timer|.service)."""
    return f"slipway-job-{check_service_name(service)}-{check_job_name(job)}"
