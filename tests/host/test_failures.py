"""Failed rollouts through main.run_command (as `slipway-release run` handles them): what is cleaned up, what
serves, what is recorded, and the exit code."""

from __future__ import annotations

import argparse
import io
import json
from typing import Any

import pytest
from fakes import Behaviour
from world import BACKEND, SERVICE, World

from slipway_core import contract
from slipway_core.host import main
from slipway_core.host.docker import DockerError, labels, running
from slipway_core.host.run import Failed, Run

REST = "health,switch,drain,record"


def command(world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], version: str,
            run_id: str, *, steps: str = REST, **over: Any) -> tuple[int, dict[str, Any]]:
    """`slipway-release run SERVICE --run-id RUN --steps STEPS` with the release on stdin."""
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(world.spec(version, **over))))
    store = world.store()
    args = argparse.Namespace(command="run", steps=steps, service=SERVICE, run_id=run_id)
    code = main.run_command(world.host, store, Run(store, run_id), args)
    return code, json.loads(capsys.readouterr().out)



@pytest.mark.parametrize(
    ("behaviour", "problem"),
    [
        (Behaviour(unhealthy=True), "is unhealthy (its HEALTHCHECK: curl: (7) connection refused)"),
        (Behaviour(exits=True), "exited (status 1"),
        (Behaviour(answers=False), "was not healthy within 3s: GET /healthz answered nothing"),
        (Behaviour(healthy_after=1000), "was not healthy within 3s"),
    ],
    ids=["unhealthy", "exited", "never-200", "slow"],
)
def test_health_failure_restores_the_kept_container(
    two_live: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], behaviour: Behaviour,
    problem: str,
) -> None:
    world = two_live
    world.image("v3.0.0", behaviour)
    assert world.begin("v3.0.0", "r3")["todo"] == REST.split(",")
    assert f"{SERVICE}-blue-kept" in world.docker.boxes  # v1 set aside while v3 boots

    code, answer = command(world, monkeypatch, capsys, "v3.0.0", "r3")

    assert code == contract.EXIT_FAILED
    assert (answer["result"], answer["failed_phase"]) == ("failed", "health")
    assert problem in answer["message"]
    assert f"{SERVICE}-blue was removed; the live release keeps serving" in answer["message"]
    blue = world.docker.inspect(f"{SERVICE}-blue")  # the kept v1, back under its name, still stopped
    assert labels(blue)["slipway.version"] == "v1.0.0"
    assert not running(blue)
    assert world.routed() == [f"{SERVICE}-green"]
    assert world.serves() == "v2.0.0"
    assert world.state()["live"]["version"] == "v2.0.0"
    assert world.state()["kept"]["version"] == "v1.0.0"
    line = world.history()[-1]
    assert (line["run_id"], line["result"], line["failed_phase"], line["version"]) == ("r3", "failed", "health",
                                                                                     "v3.0.0")
    assert world.store().paths.log("r3", "health") in answer["message"]
    world.assert_settled("r3")


def test_failed_confirm_switches_back(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world.image("v1.0.0")
    world.image("v2.0.0", Behaviour(version="v1.9.9"))  # built from the wrong commit: says another version
    world.deploy("v1.0.0", "r1")
    world.begin("v2.0.0", "r2")

    code, answer = command(world, monkeypatch, capsys, "v2.0.0", "r2")

    assert code == contract.EXIT_FAILED
    assert (answer["result"], answer["failed_phase"]) == ("failed", "switch")
    assert '"version": "v1.9.9"' in answer["message"]
    assert "switched back to blue" in answer["message"]
    assert f"{SERVICE}-green" not in world.docker.boxes
    assert world.routed() == [f"{SERVICE}-blue"]
    assert world.proxy.live(SERVICE) == "blue"
    assert world.serves() == "v1.0.0"
    assert f"set server {BACKEND}/{SERVICE}-green state ready" in world.haproxy.commands  # it was live a moment
    assert world.history()[-1]["failed_phase"] == "switch"
    world.assert_settled("r2")


def test_failed_switch_back_needs_a_person(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world.image("v1.0.0")
    world.image("v2.0.0", Behaviour(version="v1.9.9"))
    world.deploy("v1.0.0", "r1")
    world.begin("v2.0.0", "r2")
    world.haproxy.refuse[f"set server {BACKEND}/{SERVICE}-blue state ready"] = "Permission denied."

    code, answer = command(world, monkeypatch, capsys, "v2.0.0", "r2")

    assert code == contract.EXIT_NEEDS_PERSON
    assert answer["result"] == "unknown"
    assert answer["failed_phase"] == "switch"
    assert "switching back to blue FAILED too" in answer["message"]
    assert world.lock() is None
    # What served when the switch back failed still serves: the person finds the service up.
    assert world.routed() == [f"{SERVICE}-green"]
    assert running(world.docker.inspect(f"{SERVICE}-green"))
    assert running(world.docker.inspect(f"{SERVICE}-blue"))
    assert world.state()["live"]["version"] == "v1.0.0"


def test_switch_timeout_keeps_the_live_colour(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world.image("v1.0.0")
    world.image("v2.0.0")
    world.deploy("v1.0.0", "r1")
    world.begin("v2.0.0", "r2")
    world.haproxy.unreachable.add(f"{SERVICE}-green")  # the gate reaches green, the proxy's checks do not

    code, answer = command(world, monkeypatch, capsys, "v2.0.0", "r2", switch_timeout=1)

    assert code == contract.EXIT_FAILED
    assert answer["failed_phase"] == "switch"
    assert f"{SERVICE}-green did not pass its health checks within 1s" in answer["message"]
    assert f"{SERVICE}-blue stays live" in answer["message"]
    assert f"{SERVICE}-green" not in world.docker.boxes
    assert world.serves() == "v1.0.0"
    world.assert_settled("r2")


def test_no_proxy_on_the_host_needs_a_person(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world.image("v1.0.0")
    world.deploy("v1.0.0", "r1")
    world.image("v2.0.0")
    world.begin("v2.0.0", "r2")
    world.host.proxy = None

    code, answer = command(world, monkeypatch, capsys, "v2.0.0", "r2")

    assert code == contract.EXIT_NEEDS_PERSON
    assert answer["result"] == "unknown"
    assert "apply the edge_proxy role first" in answer["message"]
    assert f"{SERVICE}-green" not in world.docker.boxes
    assert world.lock() is None


def test_a_deploy_never_starts_over_the_colour_the_proxy_routes(two_live: World) -> None:
    """After a failed switch-back the proxy may route the colour state.json calls kept: the next deploy must not
    replace that container (it serves), and says a person must look."""
    world = two_live
    world.docker.start(f"{SERVICE}-blue")
    world.proxy.persist(SERVICE, "blue")  # what a failed switch-back leaves: the proxy routes blue, state says green
    before = world.docker.inspect(f"{SERVICE}-blue")
    world.image("v3.0.0")

    with pytest.raises(Failed) as refused:
        world.begin("v3.0.0", "r3")

    assert refused.value.code == contract.EXIT_NEEDS_PERSON
    assert f"{SERVICE}-blue is the live colour; refusing to replace it" in str(refused.value)
    assert world.docker.inspect(f"{SERVICE}-blue") == before


def test_a_fresh_edge_names_a_colour_with_no_container_yet(world: World) -> None:
    """The edge_proxy role persists a default colour before anything runs: the first deploy starts it."""
    world.image("v1.0.0")
    world.proxy.persist(SERVICE, "blue")
    assert world.deploy("v1.0.0", "r1")["result"] == "deployed"
    world.assert_settled("r1")


def test_a_docker_failure_while_recovering_is_answered_not_raised(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.image("v1.0.0")
    world.image("v2.0.0")
    world.deploy("v1.0.0", "r1")
    world.begin("v2.0.0", "r2")  # green started, the run stops here

    def broken(name: str) -> None:
        raise DockerError(f"`docker rm -f {name}` failed: engine gone")

    monkeypatch.setattr(world.docker, "remove", broken)
    answer = world.finish("r2", "switch", "the controller was cancelled")

    assert answer["result"] == "unknown"
    assert "engine gone" in answer["message"] and "a person must look" in answer["message"]
    assert world.lock() is None
    assert world.serves() == "v1.0.0"


def test_a_failed_pull_changes_nothing_and_claims_no_removal(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world.image("v1.0.0")
    world.image("v2.0.0", on_host=False)
    del world.docker.registry[world.ref("v2.0.0")]  # and not in the registry either: the pull is refused
    world.deploy("v1.0.0", "r1")
    begun = world.begin("v2.0.0", "r2")
    assert begun["todo"][0] == "image" and begun["upload"]

    code, answer = command(world, monkeypatch, capsys, "v2.0.0", "r2", steps=",".join(begun["todo"]))

    assert code == contract.EXIT_FAILED
    assert answer["failed_phase"] == "image" and "pull access denied" in answer["message"]
    assert "removed" not in answer["message"]
    assert f"{SERVICE}-green" not in world.docker.boxes
    world.assert_settled("r2")
