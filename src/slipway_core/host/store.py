"""A service's release state on this host, and the only code that writes it (paths: contract.StatePaths).

state.json      the live and the kept release (colour, version, image id, config hash, ...), and the releases kept
                (their images stay: releases.py)
history.jsonl   one line per deployment, rollback or failed rollout (appended, fsynced; a cluster rollout's line is
                written again, whole, when a host's result changed after it was written: replace_history)
runs/<id>.json  what one run did so far: its phases, durations and result
logs/           container logs of failed rollouts
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from slipway_core import contract
from slipway_core.host.system import Clock, read_json, write_json, write_text


class Store:
    def __init__(self, root: str, service: str, clock: Clock) -> None:
        self.service = service
        self.root = root
        self.paths = contract.StatePaths(root, service)
        self.clock = clock
        os.makedirs(self.paths.runs, mode=0o700, exist_ok=True)
        os.makedirs(self.paths.logs, mode=0o700, exist_ok=True)

    # ------------------------------------------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        return read_json(self.paths.state) or {"service": self.service, "live": None, "kept": None}

    def live(self) -> dict[str, Any] | None:
        live = self.state().get("live")
        return live if isinstance(live, dict) else None

    def save_state(
        self, live: dict[str, Any] | None, kept: dict[str, Any] | None, releases: list[dict[str, Any]] | None = None
    ) -> None:
        """The live and kept releases, and the releases kept on this host (unchanged when not given)."""
        if releases is None:
            releases = self.state().get("releases") or []
        write_json(
            self.paths.state,
            {"service": self.service, "live": live, "kept": kept, "releases": releases, "updated_at": self.clock.iso()},
            0o644,
        )

    # ----------------------------------------------------------------------------------------------- history
    def append_history(self, line: dict[str, Any]) -> None:
        with open(self.paths.history, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"time": self.clock.iso(), "service": self.service, **line}, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def replace_history(self, run_id: str, line: dict[str, Any]) -> bool:
        """Write the last line of run `run_id` again as `line` (its time kept), every other line as it was, atomically
        (system.write_text: a reader sees the old file or the new). False (nothing written) without such a line."""
        try:
            with open(self.paths.history, encoding="utf-8") as handle:
                lines = handle.readlines()
        except FileNotFoundError:
            return False
        for index in range(len(lines) - 1, -1, -1):
            with contextlib.suppress(ValueError):
                old = json.loads(lines[index])
                if isinstance(old, dict) and old.get("run_id") == run_id:
                    break
        else:
            return False
        written = old.get("time") or self.clock.iso()
        lines[index] = json.dumps({"time": written, "service": self.service, **line}, sort_keys=True) + "\n"
        write_text(self.paths.history, "".join(lines), os.stat(self.paths.history).st_mode & 0o777)
        return True

    def history(self, limit: int, *, everything: bool = False) -> list[dict[str, Any]]:
        """The last `limit` lines (every line with `everything`)."""
        try:
            with open(self.paths.history, encoding="utf-8") as handle:
                lines = handle.readlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines if everything else lines[-limit:] if limit > 0 else []:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out


    # -------------------------------------------------------------------------------------------------- runs
    def run(self, run_id: str) -> dict[str, Any]:
        return read_json(self.paths.run(run_id)) or {}

    def save_run(self, run_id: str, data: dict[str, Any]) -> None:
        write_json(self.paths.run(run_id), data, 0o600)

    def save_log(self, run_id: str, what: str, text: str) -> str:
        path = self.paths.log(run_id, what)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        return path


def services(root: str) -> list[str]:
    """Every service with a state directory under `root`."""
    if not os.path.isdir(root):
        return []
    return sorted(name for name in os.listdir(root) if contract.SERVICE_RE.fullmatch(name))
