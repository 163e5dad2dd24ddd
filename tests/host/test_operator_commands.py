"""The host side of `slipway exec` and `slipway logs` (slipway_core.host.one_off, container_logs) against the fake
host: which image and container they pick (the live release of state.json, never the inventory's version), how
the secrets reach the one-off container (its environment, never its command line), exit statuses, timeouts, and a
follow that ends when its caller closes stdin. The one-off process itself is a recorded fake runner; the follow
test runs a real `sleep` process."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fakes import NETWORK
from world import SECRET, SERVICE, World

from slipway_core import contract, operator_commands
from slipway_core.host import container_logs, one_off
from slipway_core.host.docker import DockerError
from slipway_core.host.main import release_parser


class Recorder:
    """A one-off runner: records what it was asked to run and answers as scripted."""

    def __init__(self, answer: one_off.Finished) -> None:
        self.answer = answer
        self.calls: list[tuple[list[str], dict[str, str], float]] = []

    def __call__(self, argv: list[str], env: dict[str, str], timeout: float) -> one_off.Finished:
        self.calls.append((argv, env, timeout))
        return self.answer


def exec_in(world: World, runner: Recorder, version: str = "v9.9.9", **over: Any) -> dict[str, Any]:
    """Exec `alembic current` with the release the controller would send for `version` (the inventory's)."""
    return one_off.one_off(world.docker, world.store(), world.spec(version, **over), ["alembic", "current"],
                           "x1", 30, runner)


def test_exec_runs_the_live_release_image_not_the_inventory_version(two_live: World) -> None:
    runner = Recorder(one_off.Finished(0, b"abc123 (head)\n", b""))
    record = exec_in(two_live, runner, version="v9.9.9")
    argv, _env, timeout = runner.calls[0]
    live_image = two_live.docker.images[two_live.ref("v2.0.0")]
    assert argv[argv.index("--network") + 1] == NETWORK
    assert argv[-3:] == [live_image, "alembic", "current"]  # the live release's image id, then the command
    assert argv[1:3] == ["run", "--rm"]
    assert "--detach" not in argv and "-t" not in argv and "-i" not in argv
    for hardening in (["--cap-drop", "ALL"], ["--security-opt", "no-new-privileges"], ["--read-only"],
                      ["--memory", "256m"], ["--cpus", "0.5"], ["--pids-limit", "128"]):
        start = argv.index(hardening[0])
        assert argv[start:start + len(hardening)] == hardening
    assert timeout == 30
    assert record["exit_code"] == 0 and record["host_result"] == "ran"
    assert (record["version"], record["colour"]) == ("v2.0.0", "green")
    assert record["stdout"] == "abc123 (head)\n"
    assert record["config_differs"] is False


def test_exec_resolves_postgres_as_a_colour_does_at_an_address_of_docker_s_choice(two_live: World) -> None:
    two_live.docker.add_postgres()
    runner = Recorder(one_off.Finished(0, b"", b""))
    exec_in(two_live, runner, pin_hosts=["postgres", "redis"])
    argv = runner.calls[0][0]
    postgres = two_live.docker.boxes["postgres"].ip
    assert argv[argv.index("--add-host") + 1] == f"postgres:{postgres}"  # redis is no container here: DNS
    assert argv.count("--add-host") == 1
    assert "--ip" not in argv  # the fixed addresses are the colours'


def test_exec_secrets_travel_in_the_environment_never_on_the_command_line(two_live: World) -> None:
    runner = Recorder(one_off.Finished(0, b"", b""))
    exec_in(two_live, runner)
    argv, env, _ = runner.calls[0]
    assert env["DATABASE_URL"] == SECRET and env["LOG_LEVEL"] == "info"
    assert not any(SECRET in arg for arg in argv)
    assert argv[argv.index("DATABASE_URL") - 1] == "-e"  # -e NAME: docker reads the value from its environment


def test_exec_passes_the_command_exit_status_and_removes_its_container(two_live: World) -> None:
    record = exec_in(two_live, Recorder(one_off.Finished(3, b"out\n", b"boom\n")))
    assert (record["exit_code"], record["timed_out"], record["stderr"]) == (3, False, "boom\n")
    name = operator_commands.exec_container_name(SERVICE, "x1")
    assert ("remove", name) in two_live.docker.calls
    assert name not in two_live.docker.boxes


def test_exec_stopped_at_its_timeout_exits_124(two_live: World) -> None:
    record = exec_in(two_live, Recorder(one_off.Finished(None, b"partial", b"")))
    assert (record["exit_code"], record["timed_out"]) == (operator_commands.EXEC_TIMED_OUT, True)
    assert "stopped after 30s" in record["message"]
    assert ("remove", operator_commands.exec_container_name(SERVICE, "x1")) in two_live.docker.calls


def test_exec_says_when_the_inventory_differs_from_the_live_release(two_live: World) -> None:
    record = exec_in(two_live, Recorder(one_off.Finished(0, b"", b"")), env={"LOG_LEVEL": "debug"})
    assert record["config_differs"] is True
    assert "a deploy is pending" in record["message"]


def test_exec_keeps_the_end_of_a_long_output(two_live: World) -> None:
    big = b"x" * one_off.OUTPUT_LIMIT + b"THE END\n"
    record = exec_in(two_live, Recorder(one_off.Finished(0, big, b"")))
    assert record["truncated"] is True
    assert record["stdout"].endswith("THE END\n") and len(record["stdout"]) == one_off.OUTPUT_LIMIT


def test_exec_without_a_live_release_is_refused(world: World) -> None:
    runner = Recorder(one_off.Finished(0, b"", b""))
    with pytest.raises(one_off.Refused, match=r"no live release on this host.*slipway deploy"):
        exec_in(world, runner)
    assert runner.calls == []


def test_exec_when_the_live_image_is_gone_is_refused(two_live: World) -> None:
    del two_live.docker.images[two_live.ref("v2.0.0")]
    with pytest.raises(one_off.Refused, match="not on this host any more"):
        exec_in(two_live, Recorder(one_off.Finished(0, b"", b"")))


def test_docker_failing_to_start_the_container_is_not_the_command_status(two_live: World) -> None:
    runner = Recorder(one_off.Finished(125, b"", b"docker: Error response from daemon: network slipway not found.\n"))
    with pytest.raises(DockerError, match="could not start the one-off container"):
        exec_in(two_live, runner)


def run_main(  # noqa: PLR0917 - the fixtures a test has
    world: World, argv: list[str], stdin: str, runner: Recorder, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    args = release_parser().parse_args(["--root", world.root, *argv])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = one_off.main(world.docker, world.root, args, world.clock, runner)
    out, err = capsys.readouterr()
    return code, json.loads(out)["exec"], err


def test_exec_command_answers_json_and_exit_codes(two_live: World, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    runner = Recorder(one_off.Finished(7, b"seven\n", b""))
    release = json.dumps(two_live.spec("v2.0.0"))
    code, record, _ = run_main(two_live, ["exec", "--run-id", "r9", SERVICE, "--", "sh", "-c", "exit 7"], release,
                               runner, monkeypatch, capsys)
    assert code == contract.EXIT_OK  # the command ran: its own status is in the answer
    assert (record["exit_code"], record["command"], record["stdout"]) == (7, ["sh", "-c", "exit 7"], "seven\n")
    assert runner.calls[0][0][-3:] == ["sh", "-c", "exit 7"]

    code, record, err = run_main(two_live, ["exec", "--run-id", "r9", SERVICE], release, runner, monkeypatch, capsys)
    assert code == contract.EXIT_USAGE and "no command to run" in err
    code, record, err = run_main(two_live, ["exec", "--run-id", "r9", "--timeout", "0", SERVICE, "--", "true"],
                                 release, runner, monkeypatch, capsys)
    assert code == contract.EXIT_USAGE and "timeout" in record["message"]
    code, record, err = run_main(two_live, ["exec", "--run-id", "r9", SERVICE, "--", "true"], "[]", runner,
                                 monkeypatch, capsys)
    assert code == contract.EXIT_USAGE and "not a JSON object" in record["message"]


def test_exec_command_without_live_release_exits_1(world: World, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, record, err = run_main(world, ["exec", "--run-id", "r9", SERVICE, "--", "true"],
                                 json.dumps(world.spec("v1.0.0")), Recorder(one_off.Finished(0, b"", b"")),
                                 monkeypatch, capsys)
    assert code == contract.EXIT_FAILED
    assert record["host_result"] == "refused" and "no live release" in err


# ---------------------------------------------------------------------------------------------------------- logs
def test_logs_target_is_the_live_colour_or_the_one_asked_for(two_live: World) -> None:
    store = two_live.store()
    assert container_logs.target(two_live.docker, store, None) == ([f"{SERVICE}-green"], "v2.0.0, live")
    assert container_logs.target(two_live.docker, store, "blue") == ([f"{SERVICE}-blue"],
                                                                     "v1.0.0, kept for a rollback")


def test_logs_target_without_a_live_release_asks_for_a_colour(world: World) -> None:
    with pytest.raises(container_logs.NotHere, match="no live release on this host; name a colour"):
        container_logs.target(world.docker, world.store(), None)


def test_logs_target_refuses_a_missing_container(two_live: World) -> None:
    two_live.docker.remove(f"{SERVICE}-blue")
    with pytest.raises(container_logs.NotHere, match=f"{SERVICE}-blue does not exist"):
        container_logs.target(two_live.docker, two_live.store(), "blue")


def test_logs_argv_is_docker_logs_with_checked_values() -> None:
    assert container_logs.logs_argv("docker", "c", "10m", "50", True, True) == [
        "docker", "logs", "--since", "10m", "--tail", "50", "--follow", "--timestamps", "c"]
    assert container_logs.logs_argv("docker", "c", "", "", False, False) == ["docker", "logs", "c"]
    with pytest.raises(contract.InputRefused, match="--since"):
        container_logs.logs_argv("docker", "c", "10 minutes", "", False, False)


def test_a_follow_ends_cleanly_when_the_caller_closes_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))  # the caller went away
    started = time.monotonic()
    code = container_logs.stream([["sleep", "30"], ["sleep", "30"]], until_eof=True)
    assert code == 0
    assert time.monotonic() - started < 10


def test_without_until_eof_the_status_of_docker_logs_is_kept() -> None:
    assert container_logs.stream([["sh", "-c", "exit 5"]], until_eof=False) == 5
    assert container_logs.stream([["true"], ["sh", "-c", "exit 3"]], until_eof=False) == 3  # the worst of them


def test_logs_command_names_the_container_then_streams(two_live: World, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[list[str]] = []

    def popen(argv: list[str]) -> subprocess.Popen[bytes]:
        seen.append(argv)
        return subprocess.Popen(["true"])

    args = release_parser().parse_args(["logs", SERVICE, "--since", "1h", "--tail", "20"])
    assert container_logs.main(two_live.docker, two_live.root, args, two_live.clock, popen) == 0
    assert seen == [[two_live.docker.cli, "logs", "--since", "1h", "--tail", "20", f"{SERVICE}-green"]]
    assert f"logs of {SERVICE}-green (v2.0.0, live)" in capsys.readouterr().err
    bad = release_parser().parse_args(["logs", SERVICE, "--tail", "-3"])
    assert container_logs.main(two_live.docker, two_live.root, bad, two_live.clock, popen) == contract.EXIT_USAGE
    assert len(seen) == 1


def test_logs_of_a_colour_with_replicas_read_each_one_prefixed(world3: World,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    world = world3
    world.image("v1.0.0")
    world.deploy("v1.0.0", "r1", replicas=3)
    seen: list[list[str]] = []

    def popen(argv: list[str], **pipes: Any) -> subprocess.Popen[bytes]:
        seen.append(argv)
        return subprocess.Popen(["echo", f"from {argv[-1]}"], **pipes)

    args = release_parser().parse_args(["logs", SERVICE, "--tail", "5"])
    assert container_logs.main(world.docker, world.root, args, world.clock, popen) == 0

    names = contract.colour_containers(SERVICE, "blue", 3)
    assert seen == [[world.docker.cli, "logs", "--tail", "5", name] for name in names]  # docker logs itself, no shell
    out, err = capsys.readouterr()
    assert sorted(out.splitlines()) == [f"{name} | from {name}" for name in names]
    assert f"logs of {', '.join(names)} (v1.0.0, live)" in err


def test_the_prefix_reaches_every_line_output_and_errors(capfd: pytest.CaptureFixture[str]) -> None:
    argv = ["sh", "-c", "printf 'a\\nb\\n'; printf 'oops\\nlast' >&2"]
    assert container_logs.stream([argv], until_eof=False, names=["svc-blue-2"]) == 0
    out, err = capfd.readouterr()
    assert out == "svc-blue-2 | a\nsvc-blue-2 | b\n"
    assert err == "svc-blue-2 | oops\nsvc-blue-2 | last\n"  # errors stay errors, each line prefixed


def test_a_follow_of_several_containers_leaves_no_docker_logs_behind(
        world3: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    """The defect: each replica's `docker logs --follow` ran in a `sh -c '... | sed'` pipeline; closing stdin
    terminated the shells and left every docker logs running on the host. A stand-in docker CLI records its pid and
    follows forever; once the caller closes stdin, not one of them may be alive."""
    world = world3
    world.image("v1.0.0")
    world.deploy("v1.0.0", "r1", replicas=3)
    pids = tmp_path / "pids"
    cli = tmp_path / "docker"
    cli.write_text(f'#!/bin/sh\necho $$ >> {pids}\nfor last; do :; done\necho "following $last"\nexec sleep 60\n')
    cli.chmod(0o755)
    world.docker.cli = str(cli)
    read_end, write_end = os.pipe()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(os.fdopen(read_end, "rb")))

    def hang_up_when_all_follow() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not pids.exists() or len(pids.read_text().split()) < 3):
            time.sleep(0.05)
        time.sleep(0.2)
        os.close(write_end)  # the CLI's Ctrl-C, or a dropped ssh connection

    threading.Thread(target=hang_up_when_all_follow, daemon=True).start()
    args = release_parser().parse_args(["logs", SERVICE, "--follow", "--until-eof"])
    started = time.monotonic()
    assert container_logs.main(world.docker, world.root, args, world.clock) == 0
    assert time.monotonic() - started < 15
    followed = [int(pid) for pid in pids.read_text().split()]
    assert len(followed) == 3
    time.sleep(0.2)
    alive = [pid for pid in followed if _alive(pid)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert alive == []
    names = contract.colour_containers(SERVICE, "blue", 3)
    assert sorted(capfd.readouterr().out.splitlines()) == [f"{name} | following {name}" for name in names]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
