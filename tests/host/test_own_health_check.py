"""Colours run with Docker's HEALTHCHECK at a slow interval (health.INTERVAL: each run is a `docker exec`, 0.11 of a
core per container at 1 s, measured), and Docker runs the first check only one interval after the start. While
Docker still says `starting`, the gate and the live colour's health run the container's own HEALTHCHECK command
themselves (health.check_now): the same command, so the same verdict, without waiting for Docker's run. Against the
fake engine of fakes.py, whose Docker runs its first check `docker_checks_after` clock sleeps after the start."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import HEALTHCHECK, Behaviour
from world import SERVICE, World

from slipway_core.host import health, queries
from slipway_core.host.docker import health_status
from slipway_core.host.run import Failed

LATE = 1000  # clock sleeps (50 s) before Docker's first run: far beyond the spec's health_timeout of 3 s


def own_checks(world: World) -> int:
    return sum(1 for call in world.docker.calls if call[0] == "exec" and list(call[2:]) == HEALTHCHECK)


def test_a_colour_is_let_through_at_its_own_check_not_at_docker_s_first_run(world: World) -> None:
    world.image("v1.0.0", Behaviour(healthy_after=4, docker_checks_after=LATE))

    answer = world.deploy("v1.0.0", "r1")

    assert answer["result"] == "deployed", answer
    assert world.serves() == "v1.0.0"
    info = world.docker.inspect(f"{SERVICE}-blue")
    assert health_status(info) == "starting"  # Docker has not run its check yet: the gate did
    assert own_checks(world) >= 1
    took = world.history()[-1].get("start_to_healthy")
    assert took is not None and took < 3, world.history()[-1]  # the gate's own passing run, not Docker's


def test_a_failing_own_check_keeps_the_gate_closed_though_the_path_answers(two_live: World) -> None:
    world = two_live
    # Within its start period (5 s, beyond the 3 s gate): a failing run keeps the gate closed, it does not count.
    world.image("v3.0.0", Behaviour(healthy_after=1, docker_checks_after=LATE, healthcheck_fails=True,
                                    start_period=5))
    checks_before = own_checks(world)

    with pytest.raises(Failed) as failed:
        world.deploy("v3.0.0", "r3")

    assert failed.value.phase == "health", failed.value
    assert "was not healthy within 3s" in str(failed.value), failed.value
    assert "its HEALTHCHECK run now failed: the queue is not reachable" in str(failed.value), failed.value
    assert world.serves() == "v2.0.0"  # the live release keeps serving
    # At most one run per OWN_CHECK_EVERY over the 3 s the gate waited (not one per 0.05 s poll).
    assert 1 <= own_checks(world) - checks_before <= 3 / health.OWN_CHECK_EVERY + 1


@pytest.mark.parametrize("path_status", [200, 503])
def test_past_its_start_period_a_failing_check_is_unhealthy_after_retries_runs_not_docker_s(
    two_live: World, path_status: int
) -> None:
    # Docker runs its check every 10 s: three failing runs after the start period would take 30 s more. The gate
    # applies Docker's rule to its own runs (every OWN_CHECK_EVERY) while the app answers its path, 200 or not (503,
    # as the sample's v3.0.0-badhealth does: its own check is then run only to refuse it).
    world = two_live
    world.image("v3.0.0", Behaviour(healthy_after=1, docker_checks_after=LATE, healthcheck_fails=True,
                                    path_status=path_status, start_period=2))
    started = world.clock.monotonic()

    with pytest.raises(Failed) as failed:
        world.deploy("v3.0.0", "r3", health_timeout=60)

    took = world.clock.monotonic() - started
    assert failed.value.phase == "health", failed.value
    assert ("is unhealthy (its HEALTHCHECK, run by the gate, failed 3 times in a row after its start period: "
            "the queue is not reachable)") in str(failed.value), failed.value
    assert 2 + 2 * health.OWN_CHECK_EVERY <= took <= 2 + 3 * health.OWN_CHECK_EVERY + 1, took
    assert world.serves() == "v2.0.0"


def test_status_of_a_colour_docker_has_not_checked_yet_runs_its_check(world: World) -> None:
    world.image("v1.0.0", Behaviour(healthy_after=1, docker_checks_after=LATE))
    assert world.deploy("v1.0.0", "r1")["result"] == "deployed"

    item = queries.status(world.host, world.store())
    again = world.deploy("v1.0.0", "r2")
    world.docker.boxes[f"{SERVICE}-blue"].behaviour.answers = False  # the app stops answering
    down = queries.status(world.host, world.store())

    assert item["healthy"] is True, item
    assert "starting (its HEALTHCHECK run now passes)" in item["message"], item["message"]
    assert again["result"] == "noop", again  # the live release is healthy: nothing to redeploy
    assert down["healthy"] is False, down
    assert "starting (its HEALTHCHECK run now fails: connection refused)" in down["message"], down["message"]


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        ({"Test": ["CMD", "python", "-m", "probe"], "Timeout": int(3e9)}, (["python", "-m", "probe"], 3.0)),
        ({"Test": ["CMD-SHELL", "curl -f localhost"]}, (["/bin/sh", "-c", "curl -f localhost"], 30.0)),
        ({"Test": ["NONE"]}, None),
        ({"Test": ["CMD"]}, None),
        ({}, None),
        (None, None),
    ],
)
def test_the_healthcheck_is_run_as_docker_runs_it(check: dict[str, Any] | None, expected: Any) -> None:
    assert health.healthcheck_argv({"Config": {"Healthcheck": check}}) == expected


def test_an_app_that_answers_nothing_yet_is_not_counted_unhealthy_however_long_past_its_start_period(
    two_live: World,
) -> None:
    # No start period, booting for 8 s (its check fails: connection refused): Docker, running its first check an
    # interval (10 s) after the start, would find it up. The gate waits for it as well, and lets it through.
    world = two_live
    world.image("v3.0.0", Behaviour(healthy_after=160, docker_checks_after=LATE))

    answer = world.deploy("v3.0.0", "r3", health_timeout=30)

    assert answer["result"] == "deployed", answer
    assert world.serves() == "v3.0.0"
