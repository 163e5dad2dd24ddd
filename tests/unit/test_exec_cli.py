"""Issue 14, item 12: `slipway exec --env E --service S [--host H] [--timeout S] -- CMD` with a FAKE ansible-runner
(slipway.runner.run_playbook replaced by test_cli.FakeRunner: the request is recorded, the host's `slipway_exec`
record replayed as the run's stats). Real runs: molecule/full_stack/tests/test_operator_cli.py."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_cli import FakeRunner, invoke

from slipway_core import operator_commands

EXEC_PLAYBOOK = "- name: Nothing\n  hosts: localhost\n  gather_facts: false\n  tasks: []\n"


@pytest.fixture
def ops(project: Path) -> Path:
    (project / "playbooks/exec.yml").write_text(EXEC_PLAYBOOK, encoding="utf-8")
    return project


def ran(code: int | None = 0, **over: Any) -> dict[str, Any]:
    record = {
        "host": "demo-1", "service": "notes-api", "host_result": "ran", "colour": "green", "version": "v2.0.0",
        "image": "x/notes-api:v2.0.0", "command": ["alembic", "current"], "exit_code": code, "timed_out": False,
        "stdout": "0002 (head)\n", "stderr": "INFO context\n", "truncated": False, "config_differs": False,
        "message": "",
    }
    record.update(over)
    return {"event": "playbook_on_stats",
            "event_data": {"failures": {}, "dark": {}, "artifact_data": {"slipway_exec": [record]}}}


def exec_args(ops: Path, *extra: str) -> list[str]:
    return ["exec", "--env", "demo", "--service", "notes-api", "--project-dir", str(ops), *extra]


def sent_command(runner: FakeRunner) -> list[str]:
    (request,) = runner.calls
    return list(json.loads(base64.b64decode(request.extravars["slipway_exec_command_b64"])))


def test_exec_prints_the_command_output_and_exits_with_its_status(ops: Path) -> None:
    runner = FakeRunner([ran(7, stdout="out line\n", stderr="err line\n")])
    code, out, err, _ = invoke(exec_args(ops, "--", "sh", "-c", "exit 7"), runner=runner)
    assert code == 7
    assert out == "out line\n"  # the command's stdout only: pipeable
    assert "err line\n" in err
    assert "slipway exec demo: ran - `alembic current` on demo-1 (notes-api v2.0.0, green) exited 7" in err
    (request,) = runner.calls
    assert request.playbook == "playbooks/exec.yml"
    assert request.extravars["service"] == "notes-api"
    assert request.extravars["slipway_exec_timeout"] == str(operator_commands.EXEC_TIMEOUT)
    assert request.extravars["slipway_exec_host"] == "demo-1"  # one VM: its one host, as before
    assert sent_command(runner) == ["sh", "-c", "exit 7"]


def test_the_github_outputs_and_summary_carry_the_command_status(ops: Path, tmp_path: Path) -> None:
    env = {"GITHUB_OUTPUT": str(tmp_path / "out"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    code, _out, _err, _ = invoke(exec_args(ops, "--", "false"), env=env, runner=FakeRunner([ran(9)]))
    assert code == 9
    assert "outcome=ran\nexit_code=9\n" in (tmp_path / "out").read_text()
    assert "(exit code 9," in (tmp_path / "summary.md").read_text()


def test_exec_json_carries_the_command_status_and_output(ops: Path) -> None:
    code, out, _err, _ = invoke(exec_args(ops, "--json", "--", "alembic", "current"), runner=FakeRunner([ran(0)]))
    data = json.loads(out)
    assert code == 0
    assert (data["command"], data["outcome"], data["exit_code"]) == ("exec", "ran", 0)
    assert data["records"][0]["stdout"] == "0002 (head)\n"
    assert data["records"][0]["exit_code"] == 0


def test_arguments_after_the_separator_belong_to_the_command(ops: Path) -> None:
    """`--json` and `{{ ... }}` after `--` are the command's: text output, the argument sent as typed (base64, so
    that Ansible never templates it)."""
    runner = FakeRunner([ran(0, stdout="x\n")])
    code, out, _err, _ = invoke(exec_args(ops, "--host", "demo-1", "--timeout", "5", "--", "tool", "--json",
                                          "{{ lookup('pipe', 'id') }}"), runner=runner)
    assert (code, out) == (0, "x\n")
    assert sent_command(runner) == ["tool", "--json", "{{ lookup('pipe', 'id') }}"]
    assert runner.calls[0].extravars["slipway_exec_host"] == "demo-1"
    assert runner.calls[0].extravars["slipway_exec_timeout"] == "5"


def test_a_command_stopped_at_its_timeout_exits_124(ops: Path) -> None:
    runner = FakeRunner([ran(124, timed_out=True, message="stopped after 5s (--timeout); its container was removed")])
    code, _out, err, _ = invoke(exec_args(ops, "--timeout", "5", "--", "sleep", "60"), runner=runner)
    assert code == operator_commands.EXEC_TIMED_OUT
    assert "timed-out" in err and "stopped after 5s" in err


def test_a_host_without_live_release_exits_3_with_its_reason(ops: Path) -> None:
    refused = ran(None, host_result="refused", message="notes-api has no live release on this host; deploy it first")
    refused["event_data"]["failures"] = {"demo-1": 1}
    code, out, _err, _ = invoke(exec_args(ops, "--json", "--", "true"), runner=FakeRunner([refused], status="failed"))
    data = json.loads(out)
    assert code == 3 and data["exit_code"] == 3
    assert data["outcome"] == "needs-person"
    assert data["reason"] == "demo-1: the command did not run: notes-api has no live release on this host; deploy " \
                             "it first"
    code, _out, err, _ = invoke(exec_args(ops, "--", "true"), runner=FakeRunner([refused], status="failed"))
    assert code == 3
    assert "demo-1: the command did not run: notes-api has no live release" in err


def test_an_unreachable_host_keeps_the_run_decision(ops: Path) -> None:
    dark = {"event": "playbook_on_stats", "event_data": {"failures": {}, "dark": {"demo-1": 1}, "artifact_data": {}}}
    code, _out, err, _ = invoke(exec_args(ops, "--", "true"), runner=FakeRunner([dark], status="failed"))
    assert code == 3
    assert "unreachable: demo-1" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "no command to run: give the command after `--`"),
        (["--"], "no command to run"),
        (["--", ""], "is blank"),
        (["--timeout", "0", "--", "true"], "timeout '0' is not valid: give seconds from 1 to 86400"),
        (["--timeout", "soon", "--", "true"], "timeout 'soon' is not valid"),
        (["--host", "elsewhere", "--", "true"], "host 'elsewhere' is not a host of demo; the services' containers "
                                                "run on the app hosts: choose one of demo-1"),
        (["--", "printf", "a\x00b"], "NUL byte"),
    ],
)
def test_bad_input_is_refused_before_any_host(ops: Path, extra: list[str], message: str) -> None:
    code, out, err, runner = invoke(exec_args(ops, "--json", *extra))
    assert code == 2
    assert message in err
    assert json.loads(out)["outcome"] == "bad-input"
    assert runner.calls == []


def test_an_unknown_service_or_a_missing_one_is_refused(ops: Path) -> None:
    code, _out, err, runner = invoke(["exec", "--env", "demo", "--service", "billing", "--project-dir", str(ops),
                                      "--", "true"])
    assert code == 2 and "service 'billing' is not in the services registry of demo" in err
    assert runner.calls == []
    with pytest.raises(SystemExit) as exited:
        invoke(["exec", "--env", "demo", "--project-dir", str(ops), "--", "true"])
    assert exited.value.code == 2


def test_exec_json_follows_the_documented_schema(ops: Path) -> None:
    import jsonschema  # type: ignore[import-untyped]  # noqa: PLC0415
    from test_status_json import schema  # noqa: PLC0415 - the schema loader of the --json tests

    for runner, extra in ((FakeRunner([ran(7)]), ["--", "true"]), (FakeRunner([ran(124, timed_out=True)]),
                                                                    ["--", "sleep", "9"]), (FakeRunner([]), [])):
        _code, out, _err, _ = invoke(exec_args(ops, "--json", *extra), runner=runner)
        jsonschema.validate(json.loads(out), schema())
    _code, out, _err, _ = invoke(exec_args(ops, "--json", "--", "true"), runner=FakeRunner([ran(200)]))
    data = json.loads(out)
    assert data["exit_code"] == 200
    jsonschema.validate(data, schema())
    with pytest.raises(jsonschema.ValidationError):  # exit codes above 4 are exec's only
        jsonschema.validate({**data, "command": "deploy", "records": []}, schema())


# ------------------------------------------------------------------------------- the app hosts (docs/topology.md)
@pytest.fixture
def roles_ops(roles_project: Path) -> Path:
    (roles_project / "playbooks/exec.yml").write_text(EXEC_PLAYBOOK, encoding="utf-8")
    return roles_project


def roles_exec_args(ops: Path, env: str, *extra: str) -> list[str]:
    return ["exec", "--env", env, "--service", "notes-api", "--project-dir", str(ops), *extra, "--", "true"]


@pytest.mark.parametrize(("env", "host"), [("prod", "prod-app-1"), ("wide", "wide-app-1"), ("solo", "solo-1")])
def test_exec_runs_on_the_first_app_host(roles_ops: Path, env: str, host: str) -> None:
    """Not the environment's first host (the edge host, where no release runs): its first app host, read from
    the role groups by Ansible's own inventory code."""
    runner = FakeRunner([ran(0, host=host)])
    code, _out, err, _ = invoke(roles_exec_args(roles_ops, env), runner=runner)
    assert code == 0, err
    (request,) = runner.calls
    assert request.extravars["slipway_exec_host"] == host


def test_exec_on_a_chosen_app_host(roles_ops: Path) -> None:
    runner = FakeRunner([ran(0, host="wide-app-2")])
    code, _out, err, _ = invoke(roles_exec_args(roles_ops, "wide", "--host", "wide-app-2"), runner=runner)
    assert code == 0, err
    assert runner.calls[0].extravars["slipway_exec_host"] == "wide-app-2"


@pytest.mark.parametrize(
    ("env", "host", "message"),
    [
        ("prod", "prod-edge-1", "host 'prod-edge-1' is the edge host of prod, not an app host; the services' "
                                "containers run on the app hosts: choose one of prod-app-1"),
        ("prod", "prod-data-1", "host 'prod-data-1' is the data and monitoring host of prod, not an app host; the "
                                "services' containers run on the app hosts: choose one of prod-app-1"),
        ("wide", "wide-edge-1", "choose one of wide-app-1, wide-app-2"),
        ("wide", "prod-app-1", "host 'prod-app-1' is not a host of wide; the services' containers run on the app "
                               "hosts: choose one of wide-app-1, wide-app-2"),
    ],
)
def test_a_host_that_is_not_an_app_host_is_refused_before_any_play(roles_ops: Path, env: str, host: str,
                                                                    message: str) -> None:
    code, out, err, runner = invoke(roles_exec_args(roles_ops, env, "--json", "--host", host))
    assert code == 2
    assert err.startswith("slipway: error: host ") and message in err
    assert json.loads(out)["outcome"] == "bad-input"
    assert runner.calls == []


def test_a_topology_the_plays_cannot_use_is_refused_before_any_play(
        roles_ops: Path, writer: Callable[[Path, str], Path]) -> None:
    """Role groups without an app host: the contract's message, exit 2, no playbook run."""
    writer(roles_ops / "inventories/prod/hosts.yml",
           "all:\n  children:\n    prod:\n      vars: {ansible_connection: local}\n      children:\n"
           "        prod_edge: {hosts: {prod-1: }}\n        prod_data: {hosts: {prod-1: }}\n"
           "        prod_monitoring: {hosts: {prod-1: }}\n")
    code, _out, err, runner = invoke(roles_exec_args(roles_ops, "prod"))
    assert code == 2
    assert "environment prod has no app host: add the hosts that run the services' colours to group prod_app" in err
    assert runner.calls == []
