"""The per-service deploy lock: lock.json, created exclusively, naming its run, holder and heartbeat.

A process working for the lock's run holds an flock on `.active`; a lock nobody works under and whose heartbeat is
older than `stale_after` is reported STALE (and still refused: a person checks, then unlocks).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from typing import IO, Any

from slipway_core.host.store import Store
from slipway_core.host.system import read_json, write_json


class LockRefused(Exception):
    """Another run holds the lock (or it is unreadable); nothing was changed."""


class NotHolder(Exception):
    """This run does not hold the lock it works under."""


def describe(lock: dict[str, Any]) -> str:
    return (
        f"run {lock.get('run_id')} ({lock.get('holder') or 'unknown holder'}, {lock.get('action', 'deploy')} "
        f"of {lock.get('version') or '?'}, since {lock.get('since')})"
    )


class Lock:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.path = store.paths.lock
        self._active: IO[str] | None = None

    def held(self) -> dict[str, Any] | None:
        return read_json(self.path)

    def holds(self, run_id: str) -> bool:
        held = self.held()
        return held is not None and held.get("run_id") == run_id

    def mark_active(self) -> None:
        """This process works for the lock's run until it exits (the flock goes with the process)."""
        if self._active is None:
            self._active = open(self.store.paths.active, "a", encoding="utf-8")  # noqa: SIM115 - held until exit
            fcntl.flock(self._active, fcntl.LOCK_EX)

    def busy(self) -> bool:
        """Some other process works for a run right now."""
        with open(self.store.paths.active, "a", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False

    def take(self, run_id: str, holder: str, action: str, version: str, stale_after: float) -> None:
        """Create lock.json for `run_id`, or refresh it when this run holds it already; LockRefused otherwise."""
        now = self.store.clock.time()
        lock = {
            "run_id": run_id,
            "holder": holder,
            "action": action,
            "version": version,
            "since": self.store.clock.iso(),
            "heartbeat": now,
            "pid": os.getpid(),
        }
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            held = self.held()
            if held is None:  # half-written by a run killed at that instant
                raise LockRefused(
                    f"the lock file {self.path} is unreadable; check that no deploy runs, then release "
                    "it with playbooks/unlock.yml -e slipway_unlock_force=true"
                ) from None
            if held.get("run_id") == run_id:
                self.heartbeat(run_id)
                self.mark_active()
                return
            idle = now - float(held.get("heartbeat") or 0)
            if not self.busy() and idle > stale_after:
                raise LockRefused(
                    f"{self.store.service} is locked by {describe(held)}, which looks STALE: no command of it has run "
                    f"for {idle:.0f}s (killed or cancelled?). Nothing was changed. Check that no deploy runs "
                    f"(slipway status), then release it: ansible-playbook playbooks/unlock.yml -e env=<env> "
                    f"-e service={self.store.service} -e slipway_unlock_force=true"
                ) from None
            raise LockRefused(
                f"{self.store.service} is being deployed by {describe(held)}; refusing a concurrent "
                "deploy. Nothing was changed; try again when it has finished."
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(lock, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        self.mark_active()

    def heartbeat(self, run_id: str) -> None:
        held = self.held()
        if held is None or held.get("run_id") != run_id:
            raise NotHolder(
                f"this run ({run_id}) does not hold the lock of {self.store.service} (held by "
                f"{describe(held) if held else 'nobody'})"
            )
        held["heartbeat"] = self.store.clock.time()
        write_json(self.path, held, 0o644)

    def release(self, run_id: str | None) -> bool:
        """Remove the lock when `run_id` holds it (any run's when None); True when a lock was removed."""
        held = self.held()
        if held is None and not os.path.exists(self.path):
            return False
        if run_id is not None and held is not None and held.get("run_id") != run_id:
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        return True
