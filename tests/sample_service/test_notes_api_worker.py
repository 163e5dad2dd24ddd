"""The sample worker (notes_api.worker) and its queue (notes_api.jobs), against an in-memory Redis with the list
semantics the worker relies on (BLMOVE, LREM): each job taken once, a SIGTERM mid-job lets the job finish and the
worker exit 0 (a warm shutdown), a job held by a worker that died goes back to the queue. No Docker: the real worker
runs on a real host in molecule/full_stack/tests/test_workers.py."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from notes_api import jobs, worker

PREFIX = "notes-api:"


class FakeRedis:
    """Lists and counters in memory; BLMOVE never blocks (an empty queue answers None, as after the timeout)."""

    def __init__(self) -> None:
        self.lists: dict[str, list[str]] = {}
        self.values: dict[str, int] = {}
        self.on_empty: list[Any] = []

    def lpush(self, name: str, *values: str) -> int:
        for value in values:
            self.lists.setdefault(name, []).insert(0, value)
        return len(self.lists[name])

    def rpush(self, name: str, *values: str) -> int:
        self.lists.setdefault(name, []).extend(values)
        return len(self.lists[name])

    def incr(self, name: str, amount: int = 1) -> int:
        self.values[name] = self.values.get(name, 0) + amount
        return self.values[name]

    def blmove(self, first: str, second: str, timeout: float, src: str = "LEFT", dest: str = "RIGHT") -> str | None:
        source = self.lists.get(first) or []
        if not source:
            for hook in self.on_empty:
                hook()
            return None
        value = source.pop(-1 if src == "RIGHT" else 0)
        target = self.lists.setdefault(second, [])
        target.insert(0 if dest == "LEFT" else len(target), value)
        return value

    def lrem(self, name: str, count: int, value: str) -> int:
        found = self.lists.get(name) or []
        if value in found:
            found.remove(value)
            return 1
        return 0

    def lrange(self, name: str, start: int, end: int) -> list[str]:
        found = self.lists.get(name) or []
        return found[start:] if end == -1 else found[start:end + 1]

    def llen(self, name: str) -> int:
        return len(self.lists.get(name) or [])

    def get(self, name: str) -> str | None:
        return str(self.values[name]) if name in self.values else None


class Clock:
    """Time that moves only when the worker sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.on_sleep: list[Any] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for hook in list(self.on_sleep):
            hook()


@pytest.fixture
def redis() -> FakeRedis:
    return FakeRedis()


def make_worker(redis: FakeRedis, clock: Clock, name: str = "notes-api-blue-mailer") -> worker.Worker:
    return worker.Worker(redis, jobs.Keys(PREFIX), name, clock=clock, sleep=clock.sleep)


def test_the_worker_takes_each_job_once_and_records_it(redis: FakeRedis) -> None:
    clock, keys = Clock(), jobs.Keys(PREFIX)
    ids = jobs.enqueue(redis, keys, 2.0, count=3)
    consumer = make_worker(redis, clock)
    redis.on_empty.append(consumer.stop)  # the queue drained: stop (a docker stop while idle)

    assert consumer.run() == 0

    assert jobs.stats(redis, keys) == {"enqueued": 3, "queued": 0, "finished": 3, "finished_ids": ids}
    assert clock.now >= 6.0  # each job took its seconds
    assert redis.lists[keys.processing("notes-api-blue-mailer")] == []
    assert all(key.startswith(PREFIX) for key in [*redis.lists, *redis.values])  # the ACL user's keys only


def test_sigterm_mid_job_finishes_the_job_in_hand_then_exits_0(redis: FakeRedis) -> None:
    clock, keys = Clock(), jobs.Keys(PREFIX)
    first, second = jobs.enqueue(redis, keys, 5.0, count=2)
    consumer = make_worker(redis, clock)
    clock.on_sleep.append(lambda: consumer.stop(signal.SIGTERM) if clock.now >= 1.0 else None)

    assert consumer.run() == 0

    assert clock.now >= 5.0  # the job in hand got its full 5 s after the signal at 1 s
    assert redis.lists[keys.finished] == [first]
    assert [json.loads(job)["id"] for job in redis.lists[keys.queue]] == [second]  # left for the next worker


def test_a_job_held_by_a_worker_that_died_goes_back_to_the_queue(redis: FakeRedis) -> None:
    keys = jobs.Keys(PREFIX)
    [held] = jobs.enqueue(redis, keys, 1.0)
    redis.blmove(keys.queue, keys.processing("w1"), 1, "RIGHT", "LEFT")  # w1 took it, then died

    restarted = make_worker(redis, Clock(), "w1")
    redis.on_empty.append(restarted.stop)

    assert restarted.run() == 0
    assert redis.lists[keys.finished] == [held]


def test_the_health_check_follows_the_ready_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "READY_FILE", tmp_path / "ready")
    assert worker.main(["--check"]) == 1
    worker.touch_ready()
    assert worker.main(["--check"]) == 0


def test_a_failing_worker_build_exits_1_at_start(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://notes_api:pw@db:5432/notes_api")  # pragma: allowlist secret
    monkeypatch.setenv("REDIS_URL", "redis://notes-api:pw@r:6379/0")  # pragma: allowlist secret
    monkeypatch.setenv("FAIL_WORKER", "1")
    monkeypatch.setattr(signal, "signal", lambda *_: None)

    assert worker.main([]) == 1
    assert "FAIL_WORKER=1" in capsys.readouterr().err


def test_enqueue_refuses_out_of_range_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://notes_api:pw@db:5432/notes_api")  # pragma: allowlist secret
    monkeypatch.setenv("REDIS_URL", "redis://notes-api:pw@r:6379/0")  # pragma: allowlist secret
    monkeypatch.setattr(jobs, "connect", lambda settings: FakeRedis())
    with pytest.raises(SystemExit) as exited:
        jobs.main(["enqueue", "--seconds", "999"])
    assert exited.value.code == 2
