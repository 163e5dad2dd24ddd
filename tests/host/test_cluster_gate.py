"""`begin --cluster --gate-when-ready` (the cluster rollout's begin, issue 12's speed target): on the common path (the
image on the host, no migration) and with the colour settled (the other one than a live release, or the controller's
`first_colour`), the app host starts the new colour and passes its health gate in the begin call itself, so the
cluster rollout's common path is begin -> switch -> settle. Anything else is answered as before, nothing started.
Through main.py (the fake host behind it), as the role calls it."""

from __future__ import annotations

import json
from typing import Any

from fakes import Behaviour
from world import SERVICE, World

from slipway_core import cluster_rollout, contract
from slipway_core.host.docker import health_status, running

GATE = ("--cluster", "--gate-when-ready", "--holder", "ci")


def live_v1(world: World) -> None:
    world.image("v1.0.0")
    assert world.deploy("v1.0.0", "r1")["result"] == "deployed"


def test_the_begin_starts_and_gates_the_new_colour_and_nothing_switches(world: World, release: Any) -> None:
    live_v1(world)
    world.image("v2.0.0")

    code, begun = release("begin", SERVICE, "--run-id", "r2", *GATE, stdin=world.spec("v2.0.0"))

    assert (code, begun["result"], begun["colour"]) == (0, contract.CONTINUE, "green")
    assert begun["todo"] == ["switch", "drain", "record"]
    green = world.docker.inspect(f"{SERVICE}-green")
    assert running(green) and health_status(green) == "healthy"
    assert world.routed() == [f"{SERVICE}-blue"]  # the gate passed; the edge still routes the live colour
    assert world.serves() == "v1.0.0"
    assert (world.lock() or {}).get("run_id") == "r2"  # held until settle
    # The controller's record: this host passed begin and start in one call (cluster_rollout.record).
    mine = cluster_rollout.record(None, "begin", SERVICE, json.dumps(begun), rc=0)[SERVICE]
    assert mine["phases"] == ["begin", "start"]

    code, done = release("run", SERVICE, "--run-id", "r2", "--steps", ",".join(begun["todo"]),
                         stdin=world.spec("v2.0.0"))
    assert (code, done["result"]) == (0, "deployed")
    assert world.serves() == "v2.0.0"


def test_a_gate_failing_in_the_begin_removes_the_new_colour_and_names_the_health_phase(
    world: World, release: Any
) -> None:
    live_v1(world)
    world.image("v2.0.0", Behaviour(unhealthy=True))

    code, begun = release("begin", SERVICE, "--run-id", "r2", *GATE, stdin=world.spec("v2.0.0"))

    assert (code, begun["result"], begun["failed_phase"]) == (contract.EXIT_FAILED, "failed", "health"), begun
    assert world.docker.inspect(f"{SERVICE}-green") is None
    assert world.routed() == [f"{SERVICE}-blue"]
    assert world.lock() is None
    # The cluster's history record comes from record-rollout, not from this host's failure.
    assert [line["run_id"] for line in world.history()] == ["r1"]
    mine = cluster_rollout.record(None, "begin", SERVICE, json.dumps(begun), rc=code)[SERVICE]
    assert (mine["phases"], mine["failed_phase"]) == ([], "health")


def test_an_app_host_without_a_release_starts_nothing_in_the_begin(world: World, release: Any) -> None:
    """Its colour is not settled: the cluster may begin it again with the others' (first_colour)."""
    world.image("v1.0.0")

    code, begun = release("begin", SERVICE, "--run-id", "r1", *GATE, stdin=world.spec("v1.0.0"))

    assert (code, begun["result"]) == (0, contract.CONTINUE)
    assert begun["todo"] == ["start", "health", "switch", "drain", "record"]
    assert world.docker.inspect(f"{SERVICE}-blue") is None
    assert cluster_rollout.record(None, "begin", SERVICE, json.dumps(begun), rc=0)[SERVICE][
        "phases"] == ["begin"]


def test_an_app_host_begun_again_with_the_clusters_colour_gates_it(world: World, release: Any) -> None:
    world.image("v1.0.0")

    code, begun = release("begin", SERVICE, "--run-id", "r1", *GATE, "--force",
                          stdin=world.spec("v1.0.0", first_colour="green"))

    assert (code, begun["colour"], begun["todo"]) == (0, "green", ["switch", "drain", "record"])
    assert health_status(world.docker.inspect(f"{SERVICE}-green")) == "healthy"


def test_with_the_image_missing_nothing_starts_in_the_begin(world: World, release: Any) -> None:
    live_v1(world)
    world.image("v2.0.0", on_host=False)

    code, begun = release("begin", SERVICE, "--run-id", "r2", *GATE, stdin=world.spec("v2.0.0"))

    assert (code, begun["todo"][:3]) == (0, ["image", "start", "health"])
    assert world.docker.inspect(f"{SERVICE}-green") is None


def test_without_the_flag_the_cluster_begin_only_answers(world: World, release: Any) -> None:
    live_v1(world)
    world.image("v2.0.0")

    code, begun = release("begin", SERVICE, "--run-id", "r2", "--cluster", stdin=world.spec("v2.0.0"))

    assert code == 0
    assert begun["todo"] == ["start", "health", "switch", "drain", "record"]
    assert world.docker.inspect(f"{SERVICE}-green") is None
