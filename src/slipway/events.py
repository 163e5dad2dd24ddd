"""ansible-runner events -> one compact progress line per rollout phase, and the facts of the run.

Rollout tasks are named "<phase> | <what>" (see docs/runbook.md, "Contract"). The first task of a phase opens
it; the next task of another phase (or of none) closes it and prints `<phase> <ok|failed> <seconds>`. Under
GitHub Actions the task lines of a phase are folded in a ::group:: block, followed by the compact line.
While a phase runs (an image pull can take minutes without an event), `  still in <phase> (<N>s)` is printed
every `heartbeat` seconds (30 by default), under GitHub and outside it alike. ::error annotations are escaped
(slipway.github_commands).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from slipway.github_commands import annotation
from slipway.results import RunFacts
from slipway_core.contract import PHASES

# "<phase> | <what>", possibly after the "<role> : " prefix that Ansible puts before a role's task names.
# Case-insensitive: ansible-lint wants task names capitalised ("Migrate | Run ...").
PHASE_RE = re.compile(
    r"^(?:[\w.-]+ : )?(" + "|".join(re.escape(p) for p in PHASES) + r") \| (.+)$", re.IGNORECASE
)
ERROR_RE = re.compile(r"^\s*(\[ERROR\]|ERROR!)")
MAX_LINE = 300
MAX_CAUSE = 800  # a failed task's message: a refusal names the problem and the fix, often past one line
TAIL_LINES = 20  # output lines kept for the reason of a run that failed before any task (RunFacts.output_tail)
HEARTBEAT = 30.0  # seconds between `still in <phase>` lines while a phase runs


def phase_of(task_name: str) -> tuple[str, str] | None:
    match = PHASE_RE.match(task_name.strip())
    return (match.group(1).lower(), match.group(2)) if match else None


def _seconds(event: Mapping[str, Any], clock: Callable[[], float]) -> float:
    created = event.get("created")
    if isinstance(created, str):
        try:
            return datetime.fromisoformat(created).timestamp()
        except ValueError:
            pass
    return clock()


def failure_message(res: Any) -> str:
    """A failed task's reason: its msg (or stderr); for a loop, the first failed item's, after the item's label
    (Ansible's own msg for a failed loop says only "One or more items failed")."""
    if not isinstance(res, Mapping):
        return ""
    items = res.get("results")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and item.get("failed"):
            label, reason = item.get("_ansible_item_label"), failure_message(item)
            if not reason:  # a no_log item: its reason is hidden, as the loop's own is
                break
            # A reason that starts with the item's name already (a service's failure: "api: ...") keeps it once.
            if not isinstance(label, str) or not label or reason.startswith(f"{label}: "):
                return reason
            return f"{label}: {reason}"
    if not res.get("msg") and not res.get("stderr") and res.get("censored"):
        return "(its output is hidden: no_log)"
    return str(res.get("msg") or res.get("stderr") or "")


def _short(text: str, limit: int = MAX_LINE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class _OpenPhase:
    name: str
    started: float
    failed: bool = False
    ran: bool = False  # a task of it ran (ok, changed, failed) on some host
    skipped: bool = False  # a task of it was skipped
    opened: float = 0.0  # monotonic clock when it opened (for the heartbeat: event times are not monotonic)
    beats: int = 0  # `still in` lines printed so far


class EventHandler:
    """Callable given to ansible-runner as event_handler; keeps every event (returns True)."""

    def __init__(
        self,
        out: TextIO,
        github: bool,
        redact: Callable[[str], str],
        clock: Callable[[], float] = time.time,
        *,
        heartbeat: float | None = HEARTBEAT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.facts = RunFacts()
        self.phases: list[tuple[str, str, float]] = []  # (phase, ok|failed, seconds) in order
        self._out = out
        self._github = github
        self._redact = redact
        self._clock = clock
        self._open: _OpenPhase | None = None
        self._heartbeat = heartbeat if heartbeat and heartbeat > 0 else None
        self._monotonic = monotonic
        self._lock = threading.RLock()  # the events (runner's thread) and the heartbeat thread share the output
        self._beating: threading.Thread | None = None
        self._stop = threading.Event()
        self._play: str | None = None  # the play started, until its first task shows it
        self._said: dict[tuple[str, str, str], str] = {}  # (failed|unreachable, task, reason) -> first host to say it

    def _print(self, line: str) -> None:
        with self._lock:
            self._out.write(self._redact(line) + "\n")
            self._out.flush()

    def _beat(self, interval: float) -> None:
        """The heartbeat thread: a `still in` line each interval while a phase is open; ends when none is."""
        while not self._stop.wait(min(interval, 1.0)):
            with self._lock:
                phase = self._open
                if phase is None:
                    self._beating = None
                    return
                elapsed = self._monotonic() - phase.opened
                if elapsed >= (phase.beats + 1) * interval:
                    phase.beats += 1
                    self._print(f"  still in {phase.name} ({int(elapsed)}s)")

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None or self._stop.is_set() or self._beating is not None:
            return
        self._beating = threading.Thread(
            target=self._beat, args=(self._heartbeat,), name="slipway-heartbeat", daemon=True
        )
        self._beating.start()

    def _close(self, now: float) -> None:
        if self._open is None:
            return
        phase = self._open
        self._open = None
        seconds = round(max(0.0, now - phase.started), 1)
        status = "failed" if phase.failed else "ok"
        if self._github:
            self._print("::endgroup::")
        if phase.skipped and not phase.ran and not phase.failed:
            return  # only skipped tasks (the image copy when the image is on the host): no phase happened
        self.phases.append((phase.name, status, seconds))
        self._print(f"  {phase.name:<11} {status:<6} {seconds:>7.1f}s")

    def _task_start(self, data: Mapping[str, Any], now: float) -> None:
        task = str(data.get("task") or data.get("name") or "")
        found = phase_of(task)
        if found is None:
            self._close(now)
            return
        phase, what = found
        if self._open is None or self._open.name != phase:
            self._close(now)
            self._open = _OpenPhase(phase, now, opened=self._monotonic())
            self._start_heartbeat()
            if self._github:
                self._print(f"::group::{phase}")
        if self._github:
            self._print(f"    {phase} | {_short(what)}")

    def _failed(self, data: Mapping[str, Any], unreachable: bool) -> None:
        host = str(data.get("host", "?"))
        if self._open is not None:
            self._open.failed = True
        if unreachable:
            self.facts.dark.add(host)
        elif data.get("ignore_errors"):
            # A failure the play goes on after (a cluster rollout's host: the verdict that follows decides for every
            # host, and the run's own failure says why): its phase shows it, no line and no cause of the run.
            return
        message = failure_message(data.get("res"))
        word = "unreachable" if unreachable else "failed"
        if not unreachable:
            self.facts.failure_causes[host] = self._redact(
                f"{_short(str(data.get('task', '')))}: {_short(message, MAX_CAUSE)}"
            )
        task = _short(str(data.get("task", "")))
        if self._github:
            self._print(annotation("error", f"{word}: {host}: {task}", title="slipway"))
        # The same reason from another host of the same task (a cluster rollout that stopped fails every app host with
        # its one verdict) is said once: the later hosts name the first.
        first = self._said.setdefault((word, task, message), host) if message else host
        said = message if first == host else f"the same as {first}"
        self._print(f"    {word}: {host}: {task}: {_short(said)}")

    def _stats(self, data: Mapping[str, Any]) -> None:
        self.facts.saw_stats = True
        for key, target in (("dark", self.facts.dark), ("failures", self.facts.failures)):
            value = data.get(key)
            if isinstance(value, Mapping):
                target.update(str(h) for h, count in value.items() if count)
        artifact_data = data.get("artifact_data")
        if isinstance(artifact_data, Mapping):
            self.facts.artifact_data = dict(artifact_data)

    def __call__(self, event: Mapping[str, Any]) -> bool:
        with self._lock:
            return self._handle(event)

    def _handle(self, event: Mapping[str, Any]) -> bool:
        kind = str(event.get("event", ""))
        data = event.get("event_data")
        data = data if isinstance(data, Mapping) else {}
        now = _seconds(event, self._clock)
        if kind == "playbook_on_play_start":
            self._close(now)
            # Shown with its first task: a play with no host (the cluster's plays on one VM, its off-path plays on
            # the common path: "Fail: the rollout stopped") starts no task and is not shown.
            self._play = _short(str(data.get("play") or data.get("name") or ""))
        elif kind == "playbook_on_task_start":
            if self._play is not None:
                self._print(f"play: {self._play}")
                self._play = None
            self._task_start(data, now)
        elif kind in ("runner_on_ok", "runner_on_skipped") and self._open is not None:
            self._open.ran = self._open.ran or kind == "runner_on_ok"
            self._open.skipped = self._open.skipped or kind == "runner_on_skipped"
        elif kind == "runner_on_failed":
            self._failed(data, unreachable=False)
        elif kind == "runner_on_unreachable":
            self._failed(data, unreachable=True)
        elif kind == "playbook_on_stats":
            self._close(now)
            self._stats(data)
        stdout = event.get("stdout")
        if isinstance(stdout, str) and kind in ("error", "verbose"):
            for line in stdout.splitlines():
                if ERROR_RE.match(line):
                    self.facts.errors.append(self._redact(_short(line)))
                if line.strip():
                    self.facts.output_tail.append(self._redact(_short(line)))
            del self.facts.output_tail[:-TAIL_LINES]
        return True

    def finish(self) -> None:
        """Close a phase left open (the run ended or was cancelled mid-phase) and stop the heartbeat."""
        self._stop.set()
        with self._lock:
            self._close(self._clock())
            beating = self._beating
        if beating is not None:
            beating.join(timeout=5)
