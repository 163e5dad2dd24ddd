"""Docker's exec plumbing fails now and then on a busy host, and the failure is Docker's, not the command's.

Seen in CI on this 2-core machine (2026-12-05): `docker exec` exiting 126 with "failed to start io pipe copy: unable
to copy pipes: containerd-shim: opening w/o fifo ... failed: context deadline exceeded" after the command had
already printed its answer (containerd gives up opening one of the exec's pipes under load: containerd/containerd
#4068, moby/moby #29369). testinfra's Docker backend (the scenarios' `host`) runs every check through `docker exec`,
so one such failure would fail a test that checked nothing wrong. `retrying` runs such a command again, a few times,
only when its output carries one of Docker's own failure texts with docker exec's "could not run" status (126): a
command that fails for itself fails at once. The command may have run before the plumbing failed: the scenarios'
commands run this way are reads or idempotent (docker inspect, curl, psql queries, slipway-proxy status)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

# Texts only Docker's exec plumbing prints (never a command's own output in these scenarios).
DOCKER_EXEC_FAILURES = (
    "failed to start io pipe copy",
    "unable to copy pipes",
    "OCI runtime exec failed",
    "error attaching to exec",
)
# docker exec's status when Docker could not run (or finish running) the command.
DOCKER_EXEC_STATUS = 126


class Ran(Protocol):
    """What a testinfra CommandResult offers here."""

    @property
    def rc(self) -> int: ...
    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...


Result = TypeVar("Result", bound=Ran)


def docker_failed(result: Ran) -> bool:
    """Whether a `docker exec` result is Docker's own failure (status 126 and one of its failure texts)."""
    output = result.stdout + result.stderr
    return result.rc == DOCKER_EXEC_STATUS and any(text in output for text in DOCKER_EXEC_FAILURES)


def retrying(run: Callable[..., Result], attempts: int = 4, delay: float = 1.0,
             sleep: Callable[[float], None] | None = None) -> Callable[..., Result]:
    """`run` (returning a testinfra CommandResult) run again, `delay` seconds apart and at most `attempts` times in all,
    while its result is Docker's failure; its last result."""

    def run_again(*args: Any, **kwargs: Any) -> Result:
        result = run(*args, **kwargs)
        for _ in range(attempts - 1):
            if not docker_failed(result):
                break
            (sleep or time.sleep)(delay)
            result = run(*args, **kwargs)
        return result

    return run_again
