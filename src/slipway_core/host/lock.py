"""The per-service deploy lock: lock.json, created exclusively, naming its run, who holds it (the run's audit:
actor, controller host, CI run URL), its last progress (heartbeat and step) and the host command working for it.

A process working for the lock's run holds an flock on `.active` and records its pid and start time in the lock
(`command`); the lock is released by anyone else only when neither shows a live command (`working`). A lock nobody
works under and whose last progress is older than `stale_after` is reported STALE (and still refused: a person
checks, then runs the `slipway unlock` line the message gives).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from typing import IO, Any

from slipway_core import contract
from slipway_core.host.store import Store
from slipway_core.host.system import process_alive, process_start, read_json, write_json


class LockRefused(Exception):
    """Another run holds the lock (or it is unreadable); nothing was changed."""


class NotHolder(Exception):
    """This run does not hold the lock it works under."""


describe = contract.describe_lock


def this_command() -> dict[str, Any]:
    """This process, as a lock records the command working for its run."""
    pid = os.getpid()
    return {"pid": pid, "start": process_start(pid)}


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
        """Some other process works for a run right now (holds the flock on .active)."""
        if self._active is not None:  # this process holds it
            return False
        with open(self.store.paths.active, "a", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False

    def working(self, own_run: str = "") -> str | None:
        """Which command works for the lock's run right now, other than this process; None when none does."""
        held = self.held() or {}
        found = held.get("command")
        command: dict[str, Any] = found if isinstance(found, dict) else {}
        pid = command.get("pid")
        # `own_run`: the caller works for that run, in this process; when the lock names that run and this process
        # as the last to work for it (a begin failing in its own health gate, cleaning up in the same process), the
        # flock on .active is the caller's own, taken through another Lock object.
        mine = bool(own_run) and held.get("run_id") == own_run and command == this_command()
        alive = not mine and pid != os.getpid() and process_alive(pid, command.get("start"))
        if not alive and (mine or not self.busy()):
            return None
        what = f"pid {pid}" if alive else "a process holding the flock on .active"
        return (f"a host command of run {held.get('run_id')} is still running ({what}, last progress "
                f"{'step ' + str(held['step']) if held.get('step') else 'lock'})")

    def take(  # noqa: PLR0917 - the lock's fields, in the order it lists them
        self, run_id: str, holder: str, action: str, version: str, stale_after: float,
        audit: dict[str, str] | None = None,
    ) -> None:
        """Create lock.json for `run_id`, or refresh it when this run holds it already; LockRefused otherwise."""
        now = self.store.clock.time()
        lock = {
            "run_id": run_id,
            "holder": holder,
            "audit": audit or {},
            "action": action,
            "version": version,
            "since": self.store.clock.iso(),
            "heartbeat": now,
            "step": "",
            "command": this_command(),
        }
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            held = self.held()
            found = (held or {}).get("audit")
            known: dict[str, Any] = found if isinstance(found, dict) else {}
            env = str((audit or {}).get("env") or known.get("env") or "")
            unlock = contract.unlock_command(env, self.store.service)
            if held is None:  # half-written by a run killed at that instant
                raise LockRefused(
                    f"the lock file {self.path} is unreadable; check that no deploy runs, then release it: {unlock}"
                ) from None
            if held.get("run_id") == run_id:
                self.heartbeat(run_id)
                self.mark_active()
                return
            idle = now - float(held.get("heartbeat") or 0)
            if idle > stale_after and self.working() is None:
                raise LockRefused(
                    f"{self.store.service} is locked by {describe(held)}, which looks STALE: no command of it has run "
                    f"for {idle:.0f}s (killed or cancelled?). Nothing was changed. Check that no deploy runs "
                    f"(slipway status), then take it over: {unlock}"
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

    def heartbeat(self, run_id: str, step: str | None = None) -> None:
        """Progress of `run_id` (the host program touches its lock at each step), made by this process."""
        held = self.held()
        if held is None or held.get("run_id") != run_id:
            raise NotHolder(
                f"this run ({run_id}) does not hold the lock of {self.store.service} (held by "
                f"{describe(held) if held else 'nobody'})"
            )
        held["heartbeat"] = self.store.clock.time()
        held["command"] = this_command()
        if step is not None:
            held["step"] = step
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
