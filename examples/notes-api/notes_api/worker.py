"""`python -m notes_api.worker`: the sample service's worker, a Redis-queue consumer (notes_api.jobs).

It takes one job at a time with BLMOVE (queue -> its own processing list, atomically), works on it for the seconds
the job says, records it (the `finished` list) and drops it from its processing list. On SIGTERM (`docker stop`,
the rollout stopping the old release's workers) it finishes the job in hand, takes no new one and exits 0: a warm
shutdown, like Celery's. A job left in its processing list by a worker that died is put back in the queue when a
worker of the same name starts again.

`python -m notes_api.worker --check` is its health command: exit 0 once the worker is consuming (its ready file,
in /tmp, is fresh). FAIL_WORKER=1 (a test build) makes the worker exit 1 at start.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from .config import ConfigError, Settings, parse_bool
from .jobs import Keys, Queue, connect

log = logging.getLogger("notes_api.worker")
READY_FILE = Path("/tmp/notes-worker.ready")  # noqa: S108 - the container's own tmpfs
READY_FRESH = 10.0  # seconds: the worker touches it at least every BLOCK seconds while it runs
BLOCK = 1.0  # seconds one BLMOVE waits, so a SIGTERM while idle is seen within a second


class Worker:
    """One consumer: `run()` until stopped; `stop()` (the SIGTERM handler) lets the job in hand finish."""

    def __init__(self, redis: Queue, keys: Keys, name: str, *, ready: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.redis, self.keys, self.name = redis, keys, name
        self.ready, self.clock, self.sleep = ready, clock, sleep
        self.stopping = False
        self.done = 0

    def stop(self, sig: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        if not self.stopping:
            log.info("signal %d: finishing the job in hand, then exiting", sig)
        self.stopping = True

    def requeue_orphans(self) -> int:
        """Jobs a previous run of this worker held when it died go back to the queue."""
        processing = self.keys.processing(self.name)
        orphans = [str(job) for job in self.redis.lrange(processing, 0, -1)]
        for job in orphans:
            self.redis.rpush(self.keys.queue, job)  # taken first (the queue is taken from the right)
            self.redis.lrem(processing, 1, job)
        return len(orphans)

    def work(self, raw: str) -> None:
        """One job: wait its seconds (a stop signal does not cut it short), record it, release it."""
        job: dict[str, Any] = json.loads(raw)
        seconds = float(job.get("seconds") or 0)
        log.info("job %s started (%gs)", job.get("id"), seconds)
        deadline = self.clock() + seconds
        while (left := deadline - self.clock()) > 0:
            self.sleep(min(left, 0.2))
        self.redis.rpush(self.keys.finished, str(job.get("id")))
        self.redis.lrem(self.keys.processing(self.name), 1, raw)
        self.done += 1
        log.info("job %s finished", job.get("id"))

    def run(self) -> int:
        if self.requeue_orphans():
            log.info("put back the jobs a previous run of %s held", self.name)
        log.info("worker %s consuming %s", self.name, self.keys.queue)
        while not self.stopping:
            self.ready()
            raw = self.redis.blmove(self.keys.queue, self.keys.processing(self.name), BLOCK, "RIGHT", "LEFT")
            if raw is not None:
                self.work(str(raw))
        log.info("worker %s stopped cleanly after %d job(s)", self.name, self.done)
        return 0


def touch_ready() -> None:
    READY_FILE.touch()


def check() -> int:
    """The health command: the worker touched its ready file lately."""
    try:
        age = time.time() - READY_FILE.stat().st_mtime
    except OSError:
        print("the worker has not started consuming yet", file=sys.stderr)
        return 1
    return 0 if age < READY_FRESH else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--check"]:
        return check()

    def early(sig: int, frame: FrameType | None) -> None:  # before the worker exists: nothing in hand
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, early)
    try:
        settings = Settings.from_env()
        if parse_bool("FAIL_WORKER", os.environ.get("FAIL_WORKER")):
            print("notes-api worker: FAIL_WORKER=1 (a test build): exiting 1 at start", file=sys.stderr)
            return 1
    except ConfigError as exc:
        print(f"notes-api worker: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    worker = Worker(connect(settings), Keys(settings.redis_key_prefix), socket.gethostname(), ready=touch_ready)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
