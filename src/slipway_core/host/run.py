"""One run of one service on this host: its record (runs/<id>.json), the phases it timed, and its answer.

Every command of a run reads the record, adds to it and answers with `contract.result(...)`: what happened, the
durations per phase, and `todo`, the steps left (the host decides what is left; the controller only asks).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Protocol

from slipway_core import contract
from slipway_core.host.store import Store


class Asker(Protocol):
    """Who asked for a run (release.Host): the actor and the run's audit."""

    audit: dict[str, str]

    @property
    def who(self) -> str: ...


class Failed(Exception):
    """The rollout failed in `phase`; after the cleanup the previous release serves (code 1), or the host needs a
    person (code 3)."""

    def __init__(self, phase: str, message: str, code: int = contract.EXIT_FAILED) -> None:
        super().__init__(message)
        self.phase = phase
        self.code = code


class Run:
    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = contract.check_run_id(run_id)
        self.data: dict[str, Any] = store.run(run_id) or {
            "run_id": run_id,
            "service": store.service,
            "durations": {},
            "done": [],
            "started": store.clock.iso(),
        }
        self.data.setdefault("durations", {})
        self.data.setdefault("done", [])

    @property
    def service(self) -> str:
        return self.store.service

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a phase (added up when a phase runs twice) and remember it as the phase the run is in."""
        self.data["phase"] = name
        start = self.store.clock.monotonic()
        try:
            yield
        finally:
            took = self.store.clock.monotonic() - start
            self.data["durations"][name] = round(self.data["durations"].get(name, 0.0) + took, 2)

    def add_duration(self, name: str, seconds: float) -> None:
        self.data["durations"][name] = round(self.data["durations"].get(name, 0.0) + seconds, 2)

    def done(self, step: str) -> None:
        if step not in self.data["done"]:
            self.data["done"].append(step)
        self.data["todo"] = [s for s in self.data.get("todo", []) if s != step]
        self.save()

    def save(self) -> None:
        self.store.save_run(self.run_id, self.data)

    def answer(self, outcome: str, **fields: Any) -> dict[str, Any]:
        """Record the outcome and return the answer in the contract's schema."""
        self.data.update(fields)
        self.data["result"] = outcome
        self.save()
        return self.report()

    def report(self) -> dict[str, Any]:
        data = self.data
        outcome = data.get("result") or "unknown"
        return contract.result(
            self.service,
            outcome,
            **{k: data[k] for k in contract.RESULT_KEYS if k in data and k not in ("service", "result")},
        )

    def history_line(
        self, outcome: str, new: dict[str, Any] | None, previous: dict[str, Any] | None, by: Asker, **over: str
    ) -> None:
        """One history line in the contract's HISTORY_KEYS: what happened, and who asked (`by`: the host's audit);
        `over` sets keys the run's record does not have (an unlock's action, reason and message). A run of the
        cluster rollout (`cluster` in its record) keeps its line in the record instead: the rollout's one history
        record, with every host's result, is appended on one app host at the end (rollout_record.py)."""
        line = self.history_entry(outcome, new, previous, by, **over)
        if self.data.get("cluster") and not over:
            self.data["history_line"] = line
            return
        self.store.append_history(line)

    def history_entry(
        self, outcome: str, new: dict[str, Any] | None, previous: dict[str, Any] | None, by: Asker, **over: str
    ) -> dict[str, Any]:
        new, data = new or {}, self.data
        audit = {key: str(by.audit.get(key, "")) for key in contract.AUDIT_KEYS}
        return {
            "action": data.get("action", "deploy"),
            "result": outcome,
            "version": new.get("version") or data.get("version") or "",
            "image": new.get("image") or data.get("image") or "",
            "digest": new.get("image_id") or "",
            "colour": new.get("colour") or data.get("colour") or "",
            "config_hash": new.get("config_hash") or data.get("config_hash") or "",
            "migration_revision": new.get("migration_revision") or data.get("migration_revision") or "",
            "backup": str(data.get("backup") or ""),
            "previous_version": (previous or {}).get("version", ""),
            "who": by.who,
            **audit,
            "reason": "",
            "run_id": self.run_id,
            "failed_phase": data.get("failed_phase", ""),
            "message": str(data.get("message", ""))[:2000],
            "durations": data.get("durations", {}),
            **({"start_to_healthy": data["start_to_healthy"]} if "start_to_healthy" in data else {}),
            **over,
        }
