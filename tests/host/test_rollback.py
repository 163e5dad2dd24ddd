"""Rollback to the kept release: the kept container starts again, passes the gate, and the proxy switches to it."""

from __future__ import annotations

import contextlib
import gc

import pytest
from fakes import Behaviour, Crash
from world import SERVICE, STALE_AFTER, World

from slipway_core.host import recovery
from slipway_core.host.docker import labels, running
from slipway_core.host.run import Failed, Run


def rollback(world: World, run_id: str) -> dict[str, object]:
    store = world.store()
    return recovery.rollback(world.host, store, Run(store, run_id), {}, STALE_AFTER)


def test_rollback_to_the_kept_release(two_live: World) -> None:
    world = two_live
    kept_box = world.docker.boxes[f"{SERVICE}-blue"]

    answer = rollback(world, "rb1")

    assert (answer["result"], answer["version"], answer["colour"], answer["previous_version"]) == (
        "deployed", "v1.0.0", "blue", "v2.0.0")
    assert answer["message"] == ("rolled back to v1.0.0 on blue (from its kept container), v2.0.0 kept stopped on "
                                 "green")
    assert world.docker.boxes[f"{SERVICE}-blue"] is kept_box  # the same container, started again
    assert ("start", f"{SERVICE}-blue") in world.docker.calls
    assert not running(world.docker.inspect(f"{SERVICE}-green"))
    assert world.serves() == "v1.0.0"
    state = world.state()
    assert (state["live"]["version"], state["live"]["run_id"], state["kept"]["version"]) == ("v1.0.0", "rb1",
                                                                                           "v2.0.0")
    line = world.history()[-1]
    assert (line["action"], line["result"], line["version"], line["previous_version"]) == (
        "rollback", "rolled-back", "v1.0.0", "v2.0.0")
    world.assert_settled("rb1")


def test_a_second_rollback_goes_forward_again(two_live: World) -> None:
    rollback(two_live, "rb1")

    answer = rollback(two_live, "rb2")

    assert (answer["version"], answer["colour"]) == ("v2.0.0", "green")
    assert two_live.serves() == "v2.0.0"
    two_live.assert_settled("rb2")


def test_no_kept_release_is_refused(world: World) -> None:
    world.image("v1.0.0")
    world.deploy("v1.0.0", "r1")

    with pytest.raises(Failed) as failed:
        rollback(world, "rb1")

    assert failed.value.phase == "preflight"
    assert "has no kept release to roll back to (live: v1.0.0)" in str(failed.value)
    answer = world.finish("rb1", failed.value.phase, str(failed.value))
    assert (answer["result"], answer["failed_phase"]) == ("failed", "preflight")
    world.assert_settled("rb1")


def test_a_kept_container_that_is_gone_is_refused(two_live: World) -> None:
    two_live.docker.remove(f"{SERVICE}-blue")

    with pytest.raises(Failed, match=r"the kept container notes-api-blue \(v1\.0\.0\) is gone or runs another image"):
        rollback(two_live, "rb1")

    assert two_live.finish("rb1", "start", "refused")["failed_phase"] == "start"
    two_live.assert_settled("rb1")


def test_a_kept_container_failing_its_health_is_stopped_again(two_live: World) -> None:
    world = two_live
    world.docker.boxes[f"{SERVICE}-blue"].behaviour.unhealthy = True

    with pytest.raises(Failed) as failed:
        rollback(world, "rb1")

    assert failed.value.phase == "health"
    assert f"{SERVICE}-blue was stopped again; the live release keeps serving" in str(failed.value)
    blue = world.docker.inspect(f"{SERVICE}-blue")
    assert blue is not None  # kept, not removed
    assert not running(blue)
    assert labels(blue)["slipway.version"] == "v1.0.0"
    answer = world.finish("rb1", failed.value.phase, str(failed.value))
    assert answer["result"] == "failed"
    assert world.state()["kept"]["version"] == "v1.0.0"
    world.assert_settled("rb1")


def crash_rollback(world: World, run_id: str) -> None:
    with contextlib.suppress(Crash):  # the process died there
        rollback(world, run_id)
    world.http.proxy_hook = None
    world.clock.on_sleep.clear()
    gc.collect()


def test_a_rollback_that_crashed_after_the_switch_is_rolled_forward(two_live: World) -> None:
    world = two_live

    def crash() -> None:
        raise Crash("killed while confirming")

    world.http.proxy_hook = crash
    crash_rollback(world, "rb1")

    answer = world.finish("rb1", "switch", "lost")

    assert answer["result"] == "deployed"
    assert world.serves() == "v1.0.0"
    assert world.history()[-1]["result"] == "rolled-back"
    world.assert_settled("rb1")


def test_a_rollback_that_crashed_in_the_health_gate_stops_the_kept_container(world: World) -> None:
    world.image("v1.0.0", Behaviour(healthy_after=3))
    world.image("v2.0.0")
    world.deploy("v1.0.0", "r1")
    world.deploy("v2.0.0", "r2")

    def crash() -> None:
        raise Crash("killed while waiting")

    world.clock.on_sleep.append(crash)
    crash_rollback(world, "rb1")
    assert running(world.docker.inspect(f"{SERVICE}-blue"))

    answer = world.finish("rb1", "health", "lost")

    assert answer["result"] == "failed"
    assert not running(world.docker.inspect(f"{SERVICE}-blue"))
    world.assert_settled("rb1")
