"""Issue 14, item 10: `slipway status` exits non-zero unless every requested service is healthy, and every `--json`
output (argparse errors included) follows the versioned, documented schema docs/cli-json.schema.json.

ansible-runner is FAKED: `run` replays a hand-written `playbook_on_stats` event (no ansible-playbook, no host).
"""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from slipway import cli
from slipway.runner import EventCallback, PlaybookRun, RunnerOutcome

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "docs/cli-json.schema.json"
UNHEALTHY = 4  # docs/runbook.md, "Exit codes"


def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


class Replay:
    """Stands in for ansible-runner: replays one playbook_on_stats event with the given artifact data."""

    def __init__(self, artifact_data: dict[str, Any], status: str = "successful") -> None:
        self.artifact_data = artifact_data
        self.status = status

    def __call__(self, run: PlaybookRun, on_event: EventCallback, cancelled: threading.Event) -> RunnerOutcome:
        on_event({"event": "playbook_on_stats", "event_data": {"artifact_data": self.artifact_data}})
        return RunnerOutcome(self.status, 0, False)


def invoke(args: list[str], artifact_data: dict[str, Any] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        args,
        environ={"PATH": os.environ["PATH"], "HOME": "/nonexistent"},
        run=Replay(artifact_data or {}),
        post=lambda url, payload: None,
        streams=cli.Streams(out, err),
    )
    return code, out.getvalue(), err.getvalue()


def row(service: str, healthy: bool, message: str = "container running, healthy") -> dict[str, Any]:
    return {"host": "demo-1", "service": service, "colour": "blue", "version": "v1.0.0", "healthy": healthy,
            "message": message}


def status(project: Path, rows: list[dict[str, Any]], *extra: str) -> tuple[int, str, str]:
    return invoke(["status", "--env", "demo", "--project-dir", str(project), *extra], {"slipway_status": rows})


def test_status_exits_0_only_when_every_service_is_healthy(project: Path) -> None:
    code, out, _ = status(project, [row("notes-api", True), row("lark-service", True)])
    assert code == 0, out
    code, out, _ = status(project, [row("notes-api", True), row("lark-service", False, "container NOT running")])
    assert code == UNHEALTHY
    assert "lark-service@demo-1 (container NOT running)" in out
    assert "notes-api@demo-1" not in out.splitlines()[0]
    code, out, _ = status(project, [row("notes-api", False, "never deployed")], "--service", "notes-api")
    assert code == UNHEALTHY


def test_a_requested_service_without_status_is_not_healthy(project: Path) -> None:
    code, out, _ = status(project, [], "--service", "notes-api")
    assert code == UNHEALTHY
    assert "notes-api: no status reported" in out


def test_a_failing_scheduled_job_makes_status_unhealthy_naming_it(project: Path) -> None:
    job = {"job": "nightly-report", "schedule": "*-*-* 03:00:00", "last_run": "2026-12-03T03:00:00Z",
           "last_result": "failed", "exit_code": 1, "failing": False, "skipped_last": False, "message": ""}
    code, out, _ = status(project, [{**row("notes-api", True), "jobs": [job]}])
    assert code == 0, out  # a job that ran and has not failed last is no problem
    code, out, _ = status(project, [{**row("notes-api", True), "jobs": [{**job, "failing": True}]}], "--json")
    assert code == UNHEALTHY
    reason = json.loads(out)["reason"]
    assert "notes-api@demo-1: job nightly-report failed (exit 1 at 2026-12-03T03:00:00Z)" in reason
    jsonschema.validate(json.loads(out), schema())
    assert json.loads(out)["records"][0]["jobs"][0]["exit_code"] == 1  # typed as the host reported it


def test_status_json_is_typed_versioned_and_valid(project: Path) -> None:
    code, out, _ = status(project, [row("notes-api", True), row("lark-service", False)], "--json")
    data = json.loads(out)
    jsonschema.validate(data, schema())
    assert data["schema_version"] == schema()["properties"]["schema_version"]["const"] == 1
    assert (code, data["exit_code"], data["outcome"]) == (UNHEALTHY, UNHEALTHY, "unhealthy")
    assert [r["healthy"] for r in data["records"]] == [True, False]
    assert data["run_url"] is None  # not under GitHub Actions


@pytest.mark.parametrize(
    "args",
    [
        ["deploy", "--env", "demo"],
        ["deploy", "--env", "nope"],  # bad input
        ["history", "--env", "demo"],
    ],
)
def test_every_json_report_follows_the_schema(project: Path, args: list[str]) -> None:
    data = {"slipway_results": [{"host": "demo-1", "service": "notes-api", "result": "deployed"}],
            "slipway_history": [{"host": "demo-1", "service": "notes-api", "time": "2025-01-01T00:00:00Z"}]}
    _code, out, _ = invoke([*args, "--project-dir", str(project), "--json"], data)
    jsonschema.validate(json.loads(out), schema())


def test_an_argparse_error_with_json_prints_a_json_error_and_exits_2(project: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        cli.main(["status", "--env", "demo", "--json", "--colour", "blue"], environ={}, streams=cli.Streams(out, err))
    assert exited.value.code == 2
    data = json.loads(out.getvalue())
    jsonschema.validate(data, schema())
    assert (data["exit_code"], data["outcome"], data["command"]) == (2, "bad-input", "status")
    assert "unrecognized arguments: --colour blue" in data["reason"]
    assert "usage: slipway" in err.getvalue()  # argparse's own lines stay on stderr


def test_an_argparse_error_without_json_prints_nothing_on_stdout() -> None:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        cli.main(["status"], environ={}, streams=cli.Streams(out, err))
    assert (exited.value.code, out.getvalue()) == (2, "")
    assert "the following arguments are required: --env" in err.getvalue()


def test_the_docs_describe_the_schema() -> None:
    text = (REPO / "docs/cli-json.md").read_text(encoding="utf-8")
    assert "docs/cli-json.schema.json" in text or "cli-json.schema.json" in text
    for name in schema()["properties"]:
        assert f"`{name}`" in text, name
