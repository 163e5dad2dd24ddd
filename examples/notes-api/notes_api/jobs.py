"""The sample service's job queue in Redis, under REDIS_KEY_PREFIX (the service's ACL user may touch nothing else):

  <prefix>jobs:queue                 waiting jobs (JSON `{"id": ..., "seconds": N}`), pushed left, taken right
  <prefix>jobs:processing:<worker>   the job a worker holds (moved there atomically with BLMOVE: a worker that dies
                                     mid-job leaves it there, never loses it)
  <prefix>jobs:finished              the ids of finished jobs, in the order they finished
  <prefix>jobs:enqueued              how many jobs were ever enqueued (a counter)

`python -m notes_api.jobs enqueue [--seconds N] [--count K]` enqueues K jobs that each take N seconds;
`python -m notes_api.jobs stats` prints the queue as JSON. Run them in the live release with
`slipway exec --env E --service notes-api -- python -m notes_api.jobs enqueue --seconds 3`.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any, Protocol

from .config import ConfigError, Settings


class Queue(Protocol):
    """The Redis commands the queue uses (redis.Redis, or a fake in the tests)."""

    def lpush(self, name: str, *values: str) -> Any: ...
    def rpush(self, name: str, *values: str) -> Any: ...
    def incr(self, name: str, amount: int = 1) -> Any: ...
    def blmove(self, first: str, second: str, timeout: float, src: str = "LEFT", dest: str = "RIGHT") -> Any: ...
    def lrem(self, name: str, count: int, value: str) -> Any: ...
    def lrange(self, name: str, start: int, end: int) -> Any: ...
    def llen(self, name: str) -> Any: ...
    def get(self, name: str) -> Any: ...


class Keys:
    """The queue's keys under one service's prefix."""

    def __init__(self, prefix: str) -> None:
        self.queue = f"{prefix}jobs:queue"
        self.finished = f"{prefix}jobs:finished"
        self.enqueued = f"{prefix}jobs:enqueued"
        self.prefix = prefix

    def processing(self, worker: str) -> str:
        return f"{self.prefix}jobs:processing:{worker}"


def enqueue(redis: Queue, keys: Keys, seconds: float, count: int = 1) -> list[str]:
    """Push `count` jobs that each take `seconds`; returns their ids."""
    ids = []
    for _ in range(count):
        job = {"id": uuid.uuid4().hex[:12], "seconds": seconds}
        redis.incr(keys.enqueued)
        redis.lpush(keys.queue, json.dumps(job))
        ids.append(str(job["id"]))
    return ids


def stats(redis: Queue, keys: Keys) -> dict[str, Any]:
    finished = [str(job) for job in redis.lrange(keys.finished, 0, -1)]
    return {
        "enqueued": int(redis.get(keys.enqueued) or 0),
        "queued": int(redis.llen(keys.queue)),
        "finished": len(finished),
        "finished_ids": finished,
    }


def connect(settings: Settings) -> Any:
    import redis  # noqa: PLC0415 - only a real run needs the client

    return redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=3,
                                decode_responses=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notes_api.jobs", description="The sample job queue.")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("enqueue", help="push jobs; prints their ids as JSON")
    add.add_argument("--seconds", type=float, default=3.0, help="how long each job takes (0-300, default 3)")
    add.add_argument("--count", type=int, default=1, help="how many jobs (1-1000, default 1)")
    sub.add_parser("stats", help="print enqueued/queued/finished as JSON")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"notes-api jobs: configuration error: {exc}", file=sys.stderr)
        return 2
    keys, redis = Keys(settings.redis_key_prefix), connect(settings)
    if args.command == "enqueue":
        if not 0 <= args.seconds <= 300 or not 1 <= args.count <= 1000:
            parser.error("--seconds must be 0-300 and --count 1-1000")
        print(json.dumps({"ids": enqueue(redis, keys, args.seconds, args.count)}))
    else:
        print(json.dumps(stats(redis, keys)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
