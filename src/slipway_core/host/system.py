"""What every module of the host program needs from the machine: time, files written atomically, a background task.

Time goes through a Clock so the unit tests run the rollout's waits (health gate, drain) on a fake one.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable


class Clock:
    """Wall time, a monotonic clock and sleep: the real ones."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def iso(self) -> str:
        return iso_time(self.time())


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_for(clock: Clock, check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Ask `check` until it says yes (True) or `timeout` seconds passed (False); it is asked at least once."""
    deadline = clock.monotonic() + timeout
    while True:
        if check():
            return True
        if clock.monotonic() >= deadline:
            return False
        clock.sleep(interval)


def write_text(path: str, text: str, mode: int) -> None:
    """Write `text` to a hidden temporary file beside `path`, fsync, then rename: a reader (systemd, HAProxy, the node
    exporter, the host program itself) sees the old or the new file, never half of one, and no reader's pattern
    (*.json, *.timer, *.cfg, *.prom) matches the temporary name."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.tmp.{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_json(path: str, data: Any, mode: int) -> None:
    """Write `data` as JSON, atomically (write_text)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode)


def read_json(path: str) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when the file is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def process_start(pid: int) -> int | None:
    """When process `pid` started (clock ticks after boot, /proc/<pid>/stat field 22), or None when there is no
    such process. With the pid it names one process: a pid used again later has another start."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()  # after the command name, which may hold spaces
    if len(fields) < 20 or fields[0] == "Z" or not fields[19].isdigit():  # a zombie has ended
        return None
    return int(fields[19])


def process_alive(pid: Any, start: Any) -> bool:
    """Process `pid` runs and is the one that started at `start` (see process_start)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    now = process_start(pid)
    return now is not None and now == start


def tail_text(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class Background:
    """Run fn() in a thread now; value() waits for it (None when it raised). For work off the rollout's critical
    path: reading the schema revision during the health gate, removing a set-aside container during the drain."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._value: Any = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        with contextlib.suppress(Exception):
            self._value = fn()

    def value(self) -> Any:
        self._thread.join()
        return self._value
