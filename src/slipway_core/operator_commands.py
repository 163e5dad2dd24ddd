"""The rules of the operators' one-off commands, `slipway exec` and `slipway logs`: the command line, its timeout,
`--since` and `--tail`, and the one-off container's name.

Shared by the CLI and the host program (shipped in its zipapp). Standard library only, Python 3.8+.
"""

from __future__ import annotations

import re
from typing import Any

from .contract import InputRefused, shown

EXEC_TIMEOUT = 600  # seconds a one-off command may run by default (slipway exec --timeout)
EXEC_TIMEOUT_MAX = 86400
EXEC_TIMED_OUT = 124  # the exit status of a one-off command stopped at its timeout (as timeout(1) exits)
EXEC_ARGV_MAX = 65536  # characters of a one-off command line, all arguments together
EXEC_RULE = "give the command after `--`, e.g. slipway exec --env E --service S -- alembic current"
# `docker logs --since`: a Go duration before now, a Unix time, or an RFC 3339 date or time (docker's own forms).
_DURATION_RE = re.compile(r"(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+")
_UNIX_TIME_RE = re.compile(r"[0-9]{1,11}(?:\.[0-9]{1,9})?")
_TIMESTAMP_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
                           r"(?:T([0-9]{2})(?::([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,9})?)?)?)?(Z|[+-][0-9]{2}:[0-9]{2})?")
SINCE_RULE = ("give a duration before now (90s, 10m, 1h30m), a Unix time (1767225600) or an RFC 3339 date or time "
              "(2026-12-02, 2026-12-02T20:15:00Z, 2026-12-02T20:15:00+08:00), as docker logs --since takes them")
TAIL_MAX = 1000000
TAIL_RULE = f"give a number of lines from 0 to {TAIL_MAX}, or all"


def check_exec_command(argv: Any) -> list[str]:
    """The command of `slipway exec` (argv, never a shell line): at least one word, no NUL, at most EXEC_ARGV_MAX."""
    if not isinstance(argv, (list, tuple)) or not argv or not all(isinstance(a, str) for a in argv):
        raise InputRefused(f"no command to run: {EXEC_RULE}")
    if not argv[0].strip():
        raise InputRefused(f"the command {shown(argv[0])} is blank: {EXEC_RULE}")
    if any("\x00" in a for a in argv) or sum(len(a) + 1 for a in argv) > EXEC_ARGV_MAX:
        raise InputRefused(f"the command holds a NUL byte or is longer than {EXEC_ARGV_MAX} characters: "
                           "give a shorter command (a script in the image, say)")
    return list(argv)


def check_exec_timeout(value: Any) -> float:
    """Seconds a one-off command may run: a number from 1 to EXEC_TIMEOUT_MAX."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 1 <= seconds <= EXEC_TIMEOUT_MAX:
        raise InputRefused(f"timeout {shown(value)} is not valid: give seconds from 1 to {EXEC_TIMEOUT_MAX}")
    return seconds


def check_since(value: Any) -> str:
    """A `docker logs --since` value in one of docker's forms (SINCE_RULE), or InputRefused."""
    from datetime import datetime  # noqa: PLC0415 - only this rule checks a date

    text = value if isinstance(value, str) else ""
    if _DURATION_RE.fullmatch(text) or _UNIX_TIME_RE.fullmatch(text):
        return text
    match = _TIMESTAMP_RE.fullmatch(text)
    if match:
        year, month, day, hour, minute, second = (int(g or 0) for g in match.groups()[:6])
        try:
            datetime(year, month, day, hour, minute, second)
            return text
        except ValueError:
            pass
    raise InputRefused(f"--since {shown(value)} is not a time docker understands: {SINCE_RULE}")


def check_tail(value: Any) -> str:
    """A `docker logs --tail` value: all, or a number of lines."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if text == "all" or (text.isdigit() and text.isascii() and int(text) <= TAIL_MAX):
        return text
    raise InputRefused(f"--tail {shown(value)} is not valid: {TAIL_RULE}")


def exec_container_name(service: str, run_id: str) -> str:
    """A one-off container of `slipway exec` (removed when its command ends)."""
    return f"{service}-exec-{run_id}"[:63]
