"""Every process of one ansible-playbook run, found and stopped: a cancel leaves nothing running.

ansible-runner stops a cancelled run by killing ansible-playbook's process group, but ansible-core's workers call
setsid() (their own session and group) and outlive it. Each run's environment carries a marker instead
(MARKER_VAR=<run>.<pid of this CLI>): every process the run starts inherits it, whatever its session, group or
parent after its parent died, so a scan of /proc finds them all (only this user's processes are readable, which are
the only ones a cancel may stop). Without /proc (not Linux) nothing is found and ansible-runner's own kill remains.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

MARKER_VAR = "SLIPWAY_RUN_MARKER"
PROC = Path("/proc")
TERM_GRACE = 0.5  # seconds between SIGTERM and SIGKILL
POLL = 0.05


def marker_for(ident: str) -> str:
    """The marker of one run of this CLI process (a run id is unique; the pid keeps two CLIs apart)."""
    return f"{ident}.{os.getpid()}"


def find(marker: str, proc: Path = PROC) -> list[int]:
    """The processes whose environment carries `marker` (zombies have none left: they are not running)."""
    needle = f"{MARKER_VAR}={marker}".encode()
    found = []
    with contextlib.suppress(OSError):
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:  # gone, or another user's
                continue
            if needle in environ.split(b"\0"):
                found.append(int(entry.name))
    return sorted(found)


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def terminate(
    marker: str,
    grace: float = TERM_GRACE,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[int]:
    """SIGTERM every process of the run, SIGKILL those left after `grace` seconds; returns those still found
    (none, unless one cannot be signalled)."""
    left = find(marker)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        if not left:
            break
        _signal(left, sig)
        deadline = clock() + wait
        while left and clock() < deadline:
            sleep(POLL)
            left = find(marker)
    return left
