"""What a run reported, and the exit code it maps to.

The playbooks report with `ansible.builtin.set_stats` (aggregate: true); the CLI reads the aggregated data
from the `playbook_on_stats` event (`artifact_data`):
- `slipway_results` (deploy, rollback): a list of {host, service, result: deployed|noop|planned|failed|unknown,
  version, previous_version, colour, failed_phase, message, durations: {phase: seconds}}
- `slipway_status` (status): a list of {host, service, colour, version, healthy, message}
- `slipway_history` (history): a list of {host, service, time, version, previous_version, result, colour}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slipway.exitcodes import ExitCode
from slipway_core import contract

RESULTS_KEY = "slipway_results"
STATUS_KEY = "slipway_status"
HISTORY_KEY = "slipway_history"
RESULT_VALUES = contract.RESULTS  # final results only: `continue` (between a host's steps) is not one
MAX_TEXT = 500
# Every playbook's first play (playbooks/preflight.yml) runs on the controller alone: a failure there, and nowhere
# else, is a refusal of the request (an unknown service, a topology that cannot work), before any host is touched.
PREFLIGHT_HOST = "localhost"
NOT_FOUND = 127  # the shell's exit status for a command it cannot find (ansible-runner uses it too)


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class ServiceResult:
    """One service on one host, as the rollout reported it."""

    host: str
    service: str
    result: str
    version: str = ""
    previous_version: str = ""
    colour: str = ""
    failed_phase: str = ""
    message: str = ""
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return round(sum(self.durations.values()), 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "service": self.service,
            "result": self.result,
            "version": self.version,
            "previous_version": self.previous_version,
            "colour": self.colour,
            "failed_phase": self.failed_phase,
            "message": self.message,
            "durations": dict(self.durations),
            "duration": self.duration,
        }


def _durations(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, float] = {}
    for phase, seconds in value.items():
        try:
            out[_text(phase, 40)] = round(float(seconds), 2)
        except (TypeError, ValueError):
            continue
    return out


def parse_results(artifact_data: Mapping[str, Any]) -> list[ServiceResult]:
    """The `slipway_results` list: entries that are not maps are dropped, the others read in the contract's result
    schema (contract.parse_result) plus the host; a result value that is not a final one becomes unknown."""
    raw = artifact_data.get(RESULTS_KEY) or []
    if not isinstance(raw, list):
        return []
    results = []
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        answer = contract.parse_result(dict(item))
        results.append(
            ServiceResult(
                host=_text(item.get("host"), 100),
                service=_text(answer["service"], 100),
                result=answer["result"] if answer["result"] in RESULT_VALUES else "unknown",
                version=_text(answer["version"], 128),
                previous_version=_text(answer["previous_version"], 128),
                colour=_text(answer["colour"], 20),
                failed_phase=_text(answer["failed_phase"], 40),
                message=_text(answer["message"]),
                durations=_durations(answer["durations"]),
            )
        )
    return results


def _value(value: Any, depth: int = 0) -> Any:
    """A record's value with its JSON type kept (booleans, numbers, null); text shortened to one line."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth < 3 and isinstance(value, Mapping):
        return {_text(k, 40): _value(v, depth + 1) for k, v in value.items()}
    if depth < 3 and isinstance(value, list):
        return [_value(v, depth + 1) for v in value]
    return _text(value)


def parse_records(artifact_data: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """A list of records (status or history): keys shortened, values typed as the playbook reported them
    (`healthy` stays a boolean), every text shortened to one line."""
    raw = artifact_data.get(key) or []
    if not isinstance(raw, list):
        return []
    return [{_text(k, 40): _value(v) for k, v in item.items()} for item in raw if isinstance(item, Mapping)]


@dataclass
class RunFacts:
    """Everything the run told us, gathered from runner events."""

    status: str = "unknown"  # ansible-runner status: successful, failed, canceled, timeout, ...
    cancelled: bool = False
    dark: set[str] = field(default_factory=set)
    failures: set[str] = field(default_factory=set)
    artifact_data: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    saw_stats: bool = False
    rc: int | None = None  # the exit status of ansible-runner's command (127: not found)
    failure_causes: dict[str, str] = field(default_factory=dict)  # host -> "task: message" of its last failure
    output_tail: list[str] = field(default_factory=list)  # the last lines of output that were not task events


def failure_cause(facts: RunFacts, hosts: list[str]) -> str:
    """One line on why Ansible failed: its [ERROR] line, else the failed task of the first failed host, else the
    last line the command printed (ssh-add refusing the key, a command not found) with its exit status."""
    if facts.errors:
        return facts.errors[0]
    for host in hosts:
        if host in facts.failure_causes:
            return facts.failure_causes[host] if len(hosts) == 1 else f"{host}: {facts.failure_causes[host]}"
    silent = "command not found" if facts.rc == NOT_FOUND else "no output"
    last = facts.output_tail[-1] if facts.output_tail else silent
    return f"{last} ({f'rc {facts.rc}' if facts.rc else f'ansible-runner status {facts.status}'})"


@dataclass(frozen=True)
class Decision:
    code: int  # an ExitCode; for `slipway exec` whose command ran, the command's own exit status (0-255)
    outcome: str  # deployed, noop, planned, failed, ok, needs-person
    reason: str


def decide(facts: RunFacts, results: list[ServiceResult], rollout: bool) -> Decision:  # noqa: PLR0911 - a table
    """Map what happened to an exit code. What is neither clearly fine nor a clean failure needs a person."""
    if facts.cancelled or facts.status == "canceled":
        return Decision(
            ExitCode.NEEDS_PERSON, "needs-person", "the run was cancelled; check the hosts and the locks"
        )
    if facts.dark:
        return Decision(
            ExitCode.NEEDS_PERSON, "needs-person", f"unreachable: {', '.join(sorted(facts.dark))}"
        )
    if facts.failures == {PREFLIGHT_HOST} and not results:  # the playbooks' preflight play refused the request
        why = failure_cause(facts, [PREFLIGHT_HOST])
        return Decision(ExitCode.BAD_INPUT, "bad-input", f"refused before any host was touched: {why}")
    unknown = [r for r in results if r.result == "unknown"]
    if unknown:
        names = ", ".join(f"{r.service}@{r.host}" for r in unknown)
        return Decision(ExitCode.NEEDS_PERSON, "needs-person", f"result unknown for {names}")
    failed = [r for r in results if r.result == "failed"]
    explained = {r.host for r in failed}
    unexplained = sorted(facts.failures - explained)
    if unexplained or (facts.status not in ("successful",) and not failed):
        where = f" on {', '.join(unexplained)}" if unexplained else ""
        return Decision(
            ExitCode.NEEDS_PERSON,
            "needs-person",
            f"Ansible failed outside a rollout{where}: {failure_cause(facts, unexplained)}",
        )
    if failed:
        names = ", ".join(f"{r.service}@{r.host} ({r.failed_phase or 'unknown phase'})" for r in failed)
        return Decision(
            ExitCode.ROLLOUT_FAILED, "failed", f"rollout failed, previous release still serving: {names}"
        )
    if not rollout:
        return Decision(ExitCode.OK, "ok", "done")
    for outcome, words in (("planned", "would deploy"), ("deployed", "now live:")):  # planned: a --check run
        moved = [r for r in results if r.result == outcome]
        if moved:
            names = ", ".join(f"{r.service}@{r.host} {r.previous_version or 'none'} -> {r.version}" for r in moved)
            return Decision(ExitCode.OK, outcome, f"{words} {names}")
    return Decision(ExitCode.OK, "noop", "nothing to do")
