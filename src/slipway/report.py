"""The report of a run: text for people, JSON for machines, the GitHub step summary and step outputs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slipway.cli_json import SCHEMA_VERSION
from slipway.results import Decision, ServiceResult
from slipway_core.contract import PHASES


@dataclass(frozen=True)
class Report:
    """Everything a run ends with; every text field is already redacted by the caller's Redactor."""

    command: str
    env: str
    run_id: str
    decision: Decision
    duration: float
    results: list[ServiceResult] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)  # status or history rows, typed values
    phases: list[tuple[str, str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    run_url: str = ""

    @property
    def versions(self) -> str:
        return ", ".join(sorted({r.version for r in self.results if r.version}))

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,  # docs/cli-json.md
            "command": self.command,
            "env": self.env,
            "run_id": self.run_id,
            "exit_code": int(self.decision.code),
            "outcome": self.decision.outcome,
            "reason": self.decision.reason,
            "duration": self.duration,
            "results": [r.as_dict() for r in self.results],
            "records": self.records,
            "phases": [{"phase": p, "status": s, "seconds": t} for p, s, t in self.phases],
            "errors": self.errors,
            "run_url": self.run_url or None,
        }


def to_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, sort_keys=True)


def _entry(value: dict[str, Any]) -> str:
    """One entry of a record's list: a cluster rollout's host result as `host phase result: message`, a status
    record's worker as `name state`, its scheduled job as `job last-result at time [FAILING]`, else `key=value`s."""
    if value.get("host"):
        return (" ".join(str(value.get(k) or "") for k in ("host", "phase", "result") if value.get(k))
                + (f": {value['message']}" if value.get("message") else ""))
    if value.get("name") and "state" in value:
        return f"{value['name']} {value['state']}"
    if value.get("job"):
        return (f"{value['job']} {value.get('last_result') or 'not run yet'}"
                + (f" at {value['last_run']}" if value.get("last_run") else "")
                + (" FAILING" if value.get("failing") is True else ""))
    return " ".join(f"{k}={v}" for k, v in value.items() if v not in (None, ""))


def _shown(value: object) -> str:
    """A record's value as text; a list of entries (each host's result, the workers, the jobs) one after another."""
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return "; ".join(_entry(v) for v in value)
    return str(value)


def _cell(value: object) -> str:
    return _shown(value).replace("|", "\\|").replace("\n", " ") or "-"


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _records_table(records: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for record in records:
        columns += [k for k in record if k not in columns]
    return _table(columns, [[r.get(c, "") for c in columns] for r in records])


def _in_rollout_order(phases: Iterable[str]) -> list[str]:
    """The host's phase names (one controller task can span several: the Switch call runs health, switch, drain
    and record) in rollout order (the contract's PHASES), any others after them, sorted."""
    names = set(phases)
    return [p for p in PHASES if p in names] + sorted(names - set(PHASES))


def _host_phases(result: ServiceResult) -> list[tuple[str, float]]:
    return [(p, result.durations[p]) for p in _in_rollout_order(result.durations)]


def _host_phases_table(results: list[ServiceResult]) -> list[str]:
    timed = [r for r in results if r.durations]
    columns = _in_rollout_order(p for r in timed for p in r.durations)
    rows: list[list[object]] = [
        [r.host, r.service, *[f"{r.durations[p]:.2f}" if p in r.durations else "" for p in columns]] for r in timed
    ]
    return _table(["Host", "Service", *columns], rows) if timed else []


def to_markdown(report: Report) -> str:
    icons = {"deployed": "✅", "noop": "✅", "planned": "📝", "ok": "✅", "failed": "❌"}
    icon = icons.get(report.decision.outcome, "🚨")
    lines = [
        f"### {icon} slipway {report.command} `{report.env}`: {report.decision.outcome}",
        "",
        f"{_cell(report.decision.reason)} (exit code {int(report.decision.code)}, {report.duration:.1f}s)",
        "",
    ]
    if report.results:
        rows: list[list[object]] = [
            [
                r.host,
                r.service,
                r.result,
                r.version,
                r.previous_version,
                r.colour,
                r.failed_phase,
                f"{r.duration:.1f}s",
                r.message,
            ]
            for r in report.results
        ]
        lines += _table(
            [
                "Host",
                "Service",
                "Result",
                "Version",
                "Previous",
                "Colour",
                "Failed phase",
                "Duration",
                "Message",
            ],
            rows,
        )
        lines.append("")
    host_phases = _host_phases_table(report.results)
    if host_phases:
        lines += ["Seconds per phase on the host:", "", *host_phases, ""]
    if report.records:
        lines += [*_records_table(report.records), ""]
    if report.phases:
        lines += _table(["Phase", "Status", "Seconds"], [[p, s, f"{t:.1f}"] for p, s, t in report.phases])
        lines.append("")
    if report.errors:
        lines += ["Errors:", "", *[f"- {_cell(e)}" for e in report.errors[:10]], ""]
    if report.run_url:
        lines += [f"[Run]({report.run_url}) · run id `{report.run_id}`", ""]
    return "\n".join(lines) + "\n"


def to_text(report: Report) -> str:
    lines = [f"slipway {report.command} {report.env}: {report.decision.outcome} - {report.decision.reason}"]
    for r in report.results:
        extra = f" failed in {r.failed_phase}: {r.message}" if r.result == "failed" else ""
        # The colour is the release's own (the one it went live on, or tried): "(was v2, colour blue)" read as if
        # the previous release had been on blue.
        where = f" on {r.colour}" if r.colour else ""
        lines.append(
            f"  {r.host} {r.service}: {r.result} {r.version or '-'}{where} (was {r.previous_version or '-'}, "
            f"{r.duration:.1f}s){extra}"
        )
        if r.durations:
            lines.append("    host phases: " + ", ".join(f"{p} {t:.2f}s" for p, t in _host_phases(r)))
    for record in report.records:
        lines.append("  " + " ".join(f"{k}={_shown(v)}" for k, v in record.items()))
    lines += [f"  error: {e}" for e in report.errors[:10]]
    lines.append(f"exit code {int(report.decision.code)} after {report.duration:.1f}s")
    return "\n".join(lines) + "\n"


def outputs(report: Report) -> dict[str, str]:
    """Step outputs: single-line key=value pairs."""
    values = {
        "outcome": report.decision.outcome,
        "exit_code": str(int(report.decision.code)),
        "env": report.env,
        "run_id": report.run_id,
        "version": report.versions,
        "services": ",".join(sorted({r.service for r in report.results})),
        "failed": ",".join(sorted({f"{r.service}@{r.host}" for r in report.results if r.result == "failed"})),
        "duration": f"{report.duration:.1f}",
    }
    return {k: " ".join(v.split()) for k, v in values.items()}


GITHUB_FILES = ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT")


def append_github(environ: Mapping[str, str], name: str, text: str) -> str | None:
    """Append `text` to the file $name names, when it is set; None, or one line saying why it cannot be written."""
    path = environ.get(name)
    if not path:
        return None
    try:
        with Path(path).open("a", encoding="utf-8") as fh:
            fh.write(text)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return " ".join(f"{name} {path[:200]!r} cannot be written ({exc.__class__.__name__}: {why})".split())
    return None


def unwritable_github_files(environ: Mapping[str, str]) -> dict[str, str]:
    """The GitHub files that are set but cannot be appended to: their variable -> one line on why (checked before
    either is written, so that both can carry the exit code this makes)."""
    return {name: problem for name in GITHUB_FILES if (problem := append_github(environ, name, ""))}


def write_github(report: Report, environ: Mapping[str, str], redact: Callable[[str], str]) -> list[str]:
    """Append the summary to $GITHUB_STEP_SUMMARY and the outputs to $GITHUB_OUTPUT, when they are set; returns
    one line per file that could not be written (the other one is written all the same)."""
    lines = "".join(redact(f"{key}={value}") + "\n" for key, value in outputs(report).items())
    problems = (
        append_github(environ, "GITHUB_STEP_SUMMARY", redact(to_markdown(report))),
        append_github(environ, "GITHUB_OUTPUT", lines),
    )
    return [problem for problem in problems if problem]


def run_url(environ: Mapping[str, str]) -> str:
    server, repo, run = (
        environ.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else ""
