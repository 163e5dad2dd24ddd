"""main.py: both programs' arguments, dispatch, exit codes and JSON answers (the fake host behind them)."""

from __future__ import annotations

import argparse
import json
import os
import runpy
from typing import Any

import pytest
from fakes import Behaviour
from world import SERVICE, World

from slipway_core import contract
from slipway_core.host import main, proxy_cli
from slipway_core.host.docker import DockerError
from slipway_core.host.lock import Lock
from slipway_core.host.proxy import Proxy

Capsys = pytest.CaptureFixture[str]
BUILD_ID: str = vars(main)["BUILD_ID"]  # "source": not built into a zipapp


def test_expect_build_and_build(capsys: Capsys) -> None:
    assert main.main(["--expect-build", "0123456789abcdef", "status"], prog="slipway-release") == 4
    assert "this build (source) is not the controller's (0123456789ab)" in capsys.readouterr().err
    assert main.main(["build"], prog="slipway-proxy") == 0
    assert capsys.readouterr().out.strip() == BUILD_ID
    assert main.main(["--expect-build", BUILD_ID, "build"], prog="slipway-release") == 0


def test_a_bad_service_name_is_usage(release: Any, capsys: Capsys) -> None:
    code, answer = release("begin", "Notes_API", "--run-id", "r1", stdin={})

    assert code == contract.EXIT_USAGE
    assert answer["result"] == "failed"
    assert "is not a service name" in answer["message"]


def test_deploy_through_the_commands(world: World, release: Any) -> None:
    world.image("v1.0.0")
    spec = world.spec("v1.0.0")

    code, plan = release("begin", SERVICE, "--run-id", "r1", "--plan", stdin=spec)
    assert (code, plan["result"]) == (0, "planned")
    code, begun = release("begin", SERVICE, "--run-id", "r1", "--start-when-ready", "--holder", "ci", stdin=spec)
    assert (code, begun["result"], begun["todo"]) == (0, "continue", ["health", "switch", "drain", "record"])
    code, done = release("run", SERVICE, "--run-id", "r1", "--steps", ",".join(begun["todo"]), stdin=spec)
    assert (code, done["result"], done["colour"]) == (0, "deployed", "blue")

    code, status = release("status")
    assert status["status"][0]["healthy"] is True
    code, history = release("history", SERVICE, "--limit", "5")
    assert [line["run_id"] for line in history["history"]] == ["r1"]
    code, again = release("begin", SERVICE, "--run-id", "r2", stdin=spec)
    assert again["result"] == "noop"


@pytest.mark.parametrize(
    ("stdin", "problem"),
    [("", "is not a JSON object"), ("{", "is not JSON"), ({"service": SERVICE}, "lacks 'version'")],
)
def test_a_bad_release_on_stdin_is_usage(release: Any, stdin: Any, problem: str) -> None:
    code, answer = release("begin", SERVICE, "--run-id", "r1", stdin=stdin)

    assert code == contract.EXIT_USAGE
    assert (answer["result"], answer["failed_phase"]) == ("failed", "preflight")
    assert problem in answer["message"]


def test_bad_steps_are_usage(world: World, release: Any) -> None:
    code, answer = release("run", SERVICE, "--run-id", "r1", "--steps", "switch,health", stdin=world.spec("v1.0.0"))

    assert code == contract.EXIT_USAGE
    assert "steps must be in rollout order" in answer["message"]


def test_another_runs_lock_is_refused_and_left_alone(world: World, release: Any) -> None:
    world.image("v1.0.0")
    holder = Lock(world.store())
    holder.take("r1", "bob", "deploy", "v0.9.0", 120)

    code, answer = release("begin", SERVICE, "--run-id", "r2", stdin=world.spec("v1.0.0"))

    assert code == contract.EXIT_FAILED
    assert (answer["failed_phase"], answer["run_id"]) == ("lock", "r2")
    assert "is being deployed by run r1 (bob" in answer["message"]
    assert holder.holds("r1")
    assert world.history() == []


def test_steps_without_the_lock_are_unknown(world: World, release: Any) -> None:
    code, answer = release("run", SERVICE, "--run-id", "r1", "--steps", "health", stdin=world.spec("v1.0.0"))

    assert code == contract.EXIT_NEEDS_PERSON
    assert answer["result"] == "unknown"
    assert "does not hold the lock" in answer["message"]


def test_a_docker_error_after_the_switch_rolls_forward(world: World, release: Any) -> None:
    world.image("v1.0.0")
    world.image("v2.0.0")
    world.deploy("v1.0.0", "r1")
    world.begin("v2.0.0", "r2")

    def once(call: str, args: tuple[str, ...]) -> None:
        if call == "stop":
            world.docker.before = None
            raise DockerError("`docker stop` failed: Cannot connect to the Docker daemon")

    world.docker.before = once

    code, answer = release("run", SERVICE, "--run-id", "r2", "--steps", "health,switch,drain,record",
                           stdin=world.spec("v2.0.0"))

    assert (code, answer["result"]) == (0, "deployed")
    assert "rolled forward" in answer["message"]
    world.assert_settled("r2")


def test_finish_reports_a_service_that_is_down(world: World, release: Any) -> None:
    world.image("v1.0.0")
    world.image("v2.0.0")
    world.deploy("v1.0.0", "r1")
    world.begin("v2.0.0", "r2")
    world.advance("v2.0.0", "r2", ["health", "switch"])
    world.docker.stop(f"{SERVICE}-green", 0)  # then the controller lost the host, and the new colour died

    code, answer = release("finish", SERVICE, "--run-id", "r2", "--failed-phase", "drain", "--message", "lost")

    assert code == 0
    assert answer["result"] == "unknown"
    assert "the service is down" in answer["message"]
    assert world.lock() is None


def test_rollback_through_the_command(world: World, release: Any) -> None:
    world.image("v1.0.0")
    world.image("v2.0.0")
    world.deploy("v1.0.0", "r1")
    world.deploy("v2.0.0", "r2")

    code, answer = release("rollback", SERVICE, "--run-id", "rb1", stdin={})

    assert (code, answer["result"], answer["version"]) == (0, "deployed", "v1.0.0")
    assert world.serves() == "v1.0.0"


def test_unlock_commands(world: World, release: Any) -> None:
    world.image("v1.0.0")
    world.begin("v1.0.0", "r1", start_when_ready=False)

    assert release("unlock", SERVICE)[0] == contract.EXIT_USAGE
    assert release("unlock", "--force")[0] == contract.EXIT_USAGE
    code, none = release("unlock", "--run-id", "other")
    assert (code, none) == (0, {"released": [], "refused": []})
    code, answer = release("unlock", "--run-id", "r1")
    assert [item["lock"]["run_id"] for item in answer["released"]] == ["r1"]
    assert world.lock() is None

    world.begin("v1.0.0", "r2")
    code, answer = release("unlock", SERVICE, "--force", "--reason", "the controller was killed")
    assert answer["released"][0]["note"] == f"removed the unfinished {SERVICE}-blue"
    assert f"{SERVICE}-blue" not in world.docker.boxes


def test_unlock_force_with_an_unreadable_lock(world: World, release: Any) -> None:
    store = world.store()
    with open(store.paths.lock, "w", encoding="utf-8") as handle:
        handle.write('{"run_id": "../x"}')

    code, answer = release("unlock", SERVICE, "--force", "--reason", "half-written lock")

    assert code == 0
    assert answer == {"released": [{"service": SERVICE, "lock": {"run_id": "../x"}, "note": ""}], "refused": []}
    assert not os.path.exists(store.paths.lock)


def test_make_host(tmp_path: os.PathLike[str], world: World) -> None:
    settings = os.path.join(str(tmp_path), "proxy.json")
    slots = os.path.join(str(tmp_path), "addresses.json")
    args = argparse.Namespace(proxy_settings=settings, holder="ci", addresses=slots)
    assert main.make_host(args).proxy is None
    with open(settings, "w", encoding="utf-8") as handle:
        json.dump(world.proxy.settings, handle)

    host = main.make_host(args)

    assert isinstance(host.proxy, Proxy)
    assert host.proxy.settings == world.proxy.settings
    assert host.holder == "ci"
    assert host.slots.path == slots


# ------------------------------------------------------------------------------------------------ slipway-proxy
@pytest.fixture
def proxy_cmd(world: World, monkeypatch: pytest.MonkeyPatch, capsys: Capsys, tmp_path: os.PathLike[str]) -> Any:
    """`slipway-proxy --settings FILE ARGS`: (exit code, stdout, stderr)."""
    path = os.path.join(str(tmp_path), "slipway-proxy.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(world.proxy.settings, handle)
    monkeypatch.setattr(proxy_cli, "Docker", lambda: world.docker)
    monkeypatch.setattr(proxy_cli, "Clock", lambda: world.clock)
    monkeypatch.setattr(proxy_cli, "http_get", world.http)

    def call(*argv: str, prog: str = "/usr/local/sbin/slipway-proxy") -> tuple[int, str, str]:
        capsys.readouterr()
        code = main.main(["--settings", path, *argv], prog=prog)
        out, err = capsys.readouterr()
        return code, out, err

    return call


def test_proxy_switch_and_status(world: World, proxy_cmd: Any) -> None:
    world.image("v1.0.0")
    world.image("v2.0.0", Behaviour(healthy_after=0))
    world.deploy("v1.0.0", "r1")
    world.begin("v2.0.0", "r2")
    ip = world.docker.boxes[f"{SERVICE}-green"].ip

    code, out, _ = proxy_cmd("switch", SERVICE, "green", "--prepared", "--verified-address", ip, "--timeout", "3")

    assert code == 0
    assert json.loads(out)["serving"] == ["green"]
    assert world.routed() == [f"{SERVICE}-green"]
    assert proxy_cmd("live", SERVICE)[1].strip() == "green"
    assert [item["live"] for item in json.loads(proxy_cmd("status")[1])] == ["green"]
    assert json.loads(proxy_cmd("status", SERVICE)[1])["live"] == "green"
    code, out, _ = proxy_cmd("prepare", SERVICE, "blue")
    assert json.loads(out)["servers"]["blue"]["admin"] == "drain"  # and DOWN while forced down: still drained
    code, out, _ = proxy_cmd("wait-drained", SERVICE, "blue", "--timeout", "1")
    assert (code, json.loads(out)) == (0, {"service": SERVICE, "colour": "blue", "sessions": 0})


def test_proxy_switch_over_is_the_edges_one_call(world: World, proxy_cmd: Any) -> None:
    """What a controller runs on an edge once every app host's new colour passed its gate: switch, confirm the
    version through the proxy, drain the other colour; a confirm that fails switches back (exit 1)."""
    world.image("v1.0.0")
    world.image("v2.0.0")
    world.deploy("v1.0.0", "r1")
    world.advance("v2.0.0", "r2", [s for s in world.begin("v2.0.0", "r2")["todo"] if s in contract.APP_HOST_STEPS])

    code, out, _ = proxy_cmd("switch-over", SERVICE, "green", "--version", "v2.0.0", "--confirm-path", "/version")

    assert code == 0, out
    answer = json.loads(out)
    assert (answer["live"], answer["sessions_left"]) == ("green", 0)
    assert world.serves() == "v2.0.0"
    world.docker.boxes[f"{SERVICE}-blue"].running = True  # blue back up, for the failing case
    code, _, err = proxy_cmd("switch-over", SERVICE, "blue", "--version", "v9.9.9", "--confirm-path", "/version")
    assert code == 1 and "switched back to green" in err
    assert world.serves() == "v2.0.0"


def test_proxy_errors_and_exit_codes(world: World, proxy_cmd: Any) -> None:
    code, _, err = proxy_cmd("live", SERVICE)
    assert (code, err.strip()) == (1, f"slipway-proxy: no live colour persisted for {SERVICE}")
    assert proxy_cmd("status", "billing")[0] == 2
    world.haproxy.servers[("be_notes_api", f"{SERVICE}-blue")].sessions = 2
    code, _, err = proxy_cmd("wait-drained", SERVICE, "blue", "--timeout", "1")
    assert (code, "still has 2 session(s) after 1s" in err) == (1, True)
    assert main.main(["proxy", "--settings", "/nonexistent/x.json", "status"], prog="anything") == 3


def test_proxy_check_and_reload(world: World, proxy_cmd: Any) -> None:
    with pytest.raises(SystemExit) as usage:  # by its name, this is slipway-release: it has no `check`
        main.main(["check"], prog="/usr/local/sbin/slipway-release")
    assert usage.value.code == contract.EXIT_USAGE
    code, out, _ = proxy_cmd("check")
    assert (code, json.loads(out)) == (0, {"valid": True})
    code, out, _ = proxy_cmd("reload", "--timeout", "2")
    assert json.loads(out)["workers"] == world.haproxy.workers


def test_python_m_runs_main(monkeypatch: pytest.MonkeyPatch, capsys: Capsys) -> None:
    monkeypatch.setattr("sys.argv", ["slipway-release", "build"])

    with pytest.raises(SystemExit) as done:
        runpy.run_module("slipway_core.host", run_name="__main__")

    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == BUILD_ID
