"""Issue 14, item 12: `slipway logs` without a real host: its refusals before any host, the transport's command lines
(ssh, docker exec, local; sudo -n), and the streams, run as real local processes (a stand-in for the host program
that prints lines and, under --follow, waits until its stdin closes). Ansible's inventory is read for real (the
child process slipway.connection_vars). Real hosts: molecule/full_stack/tests/test_operator_cli.py."""

from __future__ import annotations

import argparse
import io
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from slipway import cli, logs_command, logs_transport
from slipway.arguments import parse_args
from slipway.exitcodes import InputError
from slipway.logs_transport import Endpoint
from slipway.secrets import Secrets
from slipway_core import contract, operator_commands

HOST_PROGRAM = """#!/bin/sh
# a stand-in for slipway-release: $1 --expect-build, $2 the build, $3 --root, $4 the root, $5 logs, $6 the service
echo "slipway-release: logs of $6-green (v2.0.0, live)" >&2
EXIT_STATUS
echo "first line of $6"
case " $* " in *" --follow "*) cat >/dev/null; echo "stdin closed" ;; esac
echo "last line"
"""


def logs(project: Path, *extra: str, env: str = "demo") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["logs", "--env", env, "--service", "notes-api", "--project-dir", str(project), *extra],
                    environ={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}, streams=cli.Streams(out, err))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--since", "10 minutes"], "--since '10 minutes' is not a time docker understands"),
        (["--since", "2026-13-01"], "is not a time docker understands"),
        (["--since=-5m"], "is not a time docker understands"),
        (["--tail", "-1"], "--tail '-1' is not valid: give a number of lines from 0 to 1000000, or all"),
        (["--tail", "ten"], "is not valid"),
    ],
)
def test_bad_input_is_refused_before_any_host(project: Path, extra: list[str], message: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def no_inventory(*args: object) -> None:
        raise AssertionError("the inventory was read for a refused request")

    monkeypatch.setattr(logs_transport, "read_hosts", no_inventory)
    code, out, err = logs(project, "--json", *extra)
    assert code == 2
    assert message in err
    doc = json.loads(out)
    assert (doc["command"], doc["outcome"], doc["exit_code"]) == ("logs", "bad-input", 2)


def test_an_unknown_service_is_refused(project: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["logs", "--env", "demo", "--service", "billing", "--project-dir", str(project)],
                    environ={"PATH": "/usr/bin:/bin"}, streams=cli.Streams(out, err))
    assert code == 2 and "service 'billing' is not in the services registry of demo" in err.getvalue()


@pytest.mark.parametrize("since", ["90s", "1h30m", "1.5h", "250ms", "1767225600", "1767225600.5", "2026-12-02",
                                   "2026-12-02T20:15", "2026-12-02T20:15:00Z", "2026-12-02T20:15:00.123+08:00"])
def test_docker_forms_of_since_are_taken(since: str) -> None:
    assert operator_commands.check_since(since) == since


def test_the_inventory_is_read_with_ansible(project: Path) -> None:
    (remote,) = logs_transport.read_endpoints(project, "remote", {"PATH": "/usr/bin:/bin"}, None)
    assert (remote.name, remote.connection, remote.address, remote.user) == ("remote-1", "ssh", "192.0.2.10", "deploy")
    assert (remote.become_method, remote.become_user, remote.become_password_set) == ("sudo", "root", False)
    (local,) = logs_transport.read_endpoints(project, "demo", {"PATH": "/usr/bin:/bin"}, None)
    assert local.connection == "local"


def test_ssh_transport_uses_the_inventory_connection_and_pinned_keys() -> None:
    host = Endpoint(name="app-1", connection="ssh", address="203.0.113.7", port=2222, user="deploy",
                    ssh_args=("-C", "-o", "ControlMaster=auto"), private_key_file="/keys/deploy")
    remote = logs_transport.remote_command(host, "b1", "notes-api", ["--follow", "--until-eof"])
    assert remote == ["sudo", "-n", "-u", "root", "--", logs_transport.PROGRAM, "--expect-build", "b1", "--root",
                      contract.STATE_ROOT, "logs", "notes-api", "--follow", "--until-eof"]
    argv = logs_transport.argv(host, remote)
    assert argv[:4] == ["ssh", "-C", "-o", "ControlMaster=auto"]
    for option in ("BatchMode=yes", "StrictHostKeyChecking=yes", "PasswordAuthentication=no",
                   "IdentityFile=/keys/deploy"):
        assert argv[argv.index(option) - 1] == "-o"
    assert argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-l") + 1] == "deploy"
    assert argv[-3:-1] == ["--", "203.0.113.7"]
    assert argv[-1] == ("sudo -n -u root -- /usr/local/sbin/slipway-release --expect-build b1 --root "
                        "/var/lib/slipway/services logs notes-api --follow --until-eof")
    root = Endpoint(name="app-2", connection="ssh", address="app-2", user="root", state_dir="/srv/state")
    assert logs_transport.remote_command(root, "b1", "s1", [])[:5] == [
        logs_transport.PROGRAM, "--expect-build", "b1", "--root", "/srv/state"]


def test_docker_transport_is_docker_exec_with_stdin() -> None:
    host = Endpoint(name="slipway-local", connection="community.docker.docker", container="slipway-it",
                    docker_extra_args="-H unix:///run/other.sock")
    remote = logs_transport.remote_command(host, "b1", "notes-api", [])
    assert logs_transport.argv(host, remote) == [
        "docker", "-H", "unix:///run/other.sock", "exec", "-i", "slipway-it", logs_transport.PROGRAM,
        "--expect-build", "b1", "--root", contract.STATE_ROOT, "logs", "notes-api"]
    deploy = Endpoint(name="h", connection="community.docker.docker", container="c", user="deploy")
    assert logs_transport.argv(deploy, ["x"])[:6] == ["docker", "exec", "-i", "-u", "deploy", "c"]
    assert logs_transport.become(deploy) == ["sudo", "-n", "-u", "root", "--"]


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        (Endpoint(name="w", connection="winrm"), "not 'winrm'"),
        (Endpoint(name="s", connection="ssh", user="deploy", become_password_set=True), "passwordless sudo"),
        (Endpoint(name="s", connection="ssh", user="deploy", become_method="su"), "not 'su'"),
        (Endpoint(name="s", connection="ssh", user="deploy", ssh_password_set=True), "SSH keys only"),
        (Endpoint(name="s", connection="ssh", problem="ansible_host is empty"), "ansible_host is empty"),
    ],
)
def test_hosts_the_transport_cannot_reach_as_ansible_would_are_refused(endpoint: Endpoint, message: str) -> None:
    with pytest.raises(InputError, match=message):
        logs_transport.check(endpoint)


def fake_hosts(tmp_path: Path, names: list[str], status: int = 0) -> list[Endpoint]:
    program = tmp_path / "slipway-release"
    failure = f'echo "slipway-release: logs: notes-api-blue does not exist" >&2; exit {status}'
    program.write_text(HOST_PROGRAM.replace("EXIT_STATUS", failure if status else ""), encoding="utf-8")
    program.chmod(0o755)
    return [Endpoint(name=n, connection="local", command_path=str(program)) for n in names]


def make_plan(endpoints: list[Endpoint], options: list[str]) -> logs_command.Plan:
    return logs_command.Plan(Path("/"), "demo", "notes-api", endpoints, options, Secrets({}))


def run_stream(plan: logs_command.Plan, stop: threading.Event, environ: dict[str, str] | None = None,
               as_json: bool = False) -> tuple[list[str], str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {"PATH": "/usr/bin:/bin", **(environ or {})}
    problems = logs_command.stream(plan, env, as_json, out, err, stop)
    return problems, out.getvalue(), err.getvalue()


def test_one_host_streams_its_lines_as_they_are(tmp_path: Path) -> None:
    problems, out, err = run_stream(make_plan(fake_hosts(tmp_path, ["h1"]), []), threading.Event())
    assert problems == []
    assert out == "first line of notes-api\nlast line\n"
    assert err == "slipway-release: logs of notes-api-green (v2.0.0, live)\n"


def test_several_hosts_prefix_each_line_with_the_host(tmp_path: Path) -> None:
    _problems, out, err = run_stream(make_plan(fake_hosts(tmp_path, ["app-1", "app-2"]), []), threading.Event())
    assert sorted(out.splitlines()) == ["app-1 | first line of notes-api", "app-1 | last line",
                                        "app-2 | first line of notes-api", "app-2 | last line"]
    assert "app-2 | slipway-release: logs of notes-api-green" in err


def test_json_lines(tmp_path: Path) -> None:
    _problems, out, _err = run_stream(make_plan(fake_hosts(tmp_path, ["h1"]), []), threading.Event(), as_json=True)
    lines = [json.loads(line) for line in out.splitlines()]
    assert {"host": "h1", "stream": "stdout", "line": "last line"} in lines
    header = "slipway-release: logs of notes-api-green (v2.0.0, live)"
    assert {"host": "h1", "stream": "stderr", "line": header} in lines


def test_follow_runs_until_stopped_then_closes_the_streams(tmp_path: Path) -> None:
    stop = threading.Event()
    plan = make_plan(fake_hosts(tmp_path, ["h1", "h2"]), ["--follow", "--until-eof"])
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    started = time.monotonic()
    problems, out, _err = run_stream(plan, stop)
    assert problems == []
    assert 1.4 < time.monotonic() - started < 1.5 + logs_command.STOP_GRACE + 1
    assert out.count("first line of notes-api") == 2
    assert out.count("stdin closed") == 2  # each host program saw its stdin close: nothing keeps running


@pytest.mark.parametrize(
    ("status", "why"),
    [(4, "another build than this slipway's; `slipway status --env demo` installs this one"),
     (1, "h1: notes-api-blue does not exist"), (9, "h1: notes-api-blue does not exist")],
)
def test_a_host_that_cannot_be_read_is_named(tmp_path: Path, status: int, why: str) -> None:
    problems, _out, _err = run_stream(make_plan(fake_hosts(tmp_path, ["h1"], status), []), threading.Event())
    assert len(problems) == 1 and why in problems[0]


def test_a_refused_key_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="ssh-add refused SLIPWAY_SSH_PRIVATE_KEY"), \
            logs_transport.ssh_agent("not a key", {"PATH": "/usr/bin:/bin"}):
        pass


def test_the_signal_handlers_are_restored(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import signal  # noqa: PLC0415

    before = signal.getsignal(signal.SIGINT)
    calls: list[Callable[..., object]] = []

    def fake_stream(*args: object) -> list[str]:
        calls.append(signal.getsignal(signal.SIGINT))  # type: ignore[arg-type]
        return []

    monkeypatch.setattr(logs_command, "stream", fake_stream)
    monkeypatch.setattr(logs_command, "plan", lambda args, environ: make_plan([], []))
    args = argparse.Namespace(json=False, env="demo")
    assert logs_command.run(args, {}, io.StringIO(), io.StringIO()) == 0
    assert calls and calls[0] is not before
    assert signal.getsignal(signal.SIGINT) is before


def test_a_refused_logs_json_follows_the_documented_schema(project: Path) -> None:
    import jsonschema  # type: ignore[import-untyped]  # noqa: PLC0415
    from test_status_json import schema  # noqa: PLC0415 - the schema loader of the --json tests

    _code, out, _err = logs(project, "--json", "--tail", "x")
    jsonschema.validate(json.loads(out), schema())


# ------------------------------------------------------------------------------- the app hosts (docs/topology.md)
def planned_hosts(project: Path, env: str, *extra: str) -> list[str]:
    args = parse_args(["logs", "--env", env, "--service", "notes-api", "--project-dir", str(project), *extra])
    return [e.name for e in logs_command.plan(args, {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}).endpoints]


@pytest.mark.parametrize(("env", "hosts"), [("prod", ["prod-app-1"]), ("wide", ["wide-app-1", "wide-app-2"]),
                                            ("solo", ["solo-1"]), ("demo", ["demo-1"])])
def test_logs_reads_the_app_hosts_only(roles_project: Path, env: str, hosts: list[str]) -> None:
    """The role groups as Ansible reads them: never the edge or data host (no release runs there); one VM, with or
    without role groups, is read as before."""
    assert planned_hosts(roles_project, env) == hosts
    assert planned_hosts(roles_project, env, "--host", hosts[-1]) == hosts[-1:]


def test_logs_streams_from_the_app_hosts_only(roles_project: Path, tmp_path: Path,
                                              writer: Callable[[Path, str], Path]) -> None:
    """Through the CLI: every host of `wide` would run the stand-in host program (local connection), and only the
    app hosts' lines come back."""
    (program,) = {e.command_path for e in fake_hosts(tmp_path, ["h"])}
    writer(roles_project / "inventories/wide/group_vars/wide/paths.yml", f"app_release_command_path: {program}\n")
    code, out, err = logs(roles_project, env="wide")
    assert code == 0, err
    assert sorted(out.splitlines()) == ["wide-app-1 | first line of notes-api", "wide-app-1 | last line",
                                        "wide-app-2 | first line of notes-api", "wide-app-2 | last line"]
    assert sorted(line.split(" | ")[0] for line in err.splitlines()) == ["wide-app-1", "wide-app-2"]


@pytest.mark.parametrize(
    ("env", "host", "message"),
    [
        ("prod", "prod-edge-1", "host 'prod-edge-1' is the edge host of prod, not an app host; the services' "
                                "containers run on the app hosts: choose one of prod-app-1"),
        ("wide", "wide-data-1", "host 'wide-data-1' is the data and monitoring host of wide, not an app host; the "
                                "services' containers run on the app hosts: choose one of wide-app-1, wide-app-2"),
        ("prod", "wide-app-1", "host 'wide-app-1' is not a host of prod; the services' containers run on the app "
                               "hosts: choose one of prod-app-1"),
        ("demo", "db-9", "host 'db-9' is not a host of demo; the services' containers run on the app hosts: choose "
                         "one of demo-1"),
    ],
)
def test_a_host_that_is_not_an_app_host_is_refused_before_any_connection(
        roles_project: Path, env: str, host: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_transport(*args: object) -> None:
        raise AssertionError("a transport was built for a refused request")

    monkeypatch.setattr(logs_transport, "endpoints", no_transport)
    code, out, err = logs(roles_project, "--json", "--host", host, env=env)
    assert code == 2
    assert err == f"slipway: error: {message}\n"
    doc = json.loads(out)
    assert (doc["command"], doc["outcome"], doc["exit_code"]) == ("logs", "bad-input", 2)
