"""Docker 20.10 stops a container's HEALTHCHECKs after the engine restarts with live-restore (moby#41871): its
status stays what it was (`starting`, or a stale `unhealthy`). Traffic does not depend on it (the edge checks for
itself), but status and a deploy's no-op check read it: a stale status defers to the edge's own check of the
colour; a fresh one still counts (the fake engine of fakes.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import Box, docker_time
from world import SERVICE, World

from slipway_core.host import health, queries


def frozen(world: World, status: str, seconds_ago: float) -> None:
    """The live colour's Docker health as the engine left it: `status`, last check `seconds_ago`."""
    end = docker_time(world.clock.time() - seconds_ago)
    answer = {"Status": status, "Log": [{"ExitCode": 0 if status == "healthy" else 1, "Output": "", "End": end}]}
    real = world.docker.health

    def health_of(box: Box) -> dict[str, Any] | None:
        return answer if box.name == f"{SERVICE}-green" else real(box)

    world.docker.health = health_of  # type: ignore[method-assign]


@pytest.mark.parametrize("status", ["starting", "unhealthy"])
def test_a_stale_status_defers_to_the_edge_s_check(two_live: World, status: str) -> None:
    world = two_live
    frozen(world, status, seconds_ago=120)

    item = queries.status(world.host, world.store())
    again = world.deploy("v2.0.0", "r3")

    assert item["healthy"] is True, item
    assert f"Docker's {status} is stale (its checks stopped), the edge's check passes" in item["message"]
    assert again["result"] == "noop", again  # not a redeploy of the release that serves
    assert world.serves() == "v2.0.0"


def test_a_stale_status_and_a_failing_edge_check_is_not_healthy(two_live: World) -> None:
    world = two_live
    frozen(world, "starting", seconds_ago=120)
    world.docker.boxes[f"{SERVICE}-green"].behaviour.answers = False  # the app stopped answering
    world.clock.sleep(1)  # the edge's next checks

    item = queries.status(world.host, world.store())

    assert item["healthy"] is False
    assert "the edge's check fails" in item["message"]


def test_a_fresh_status_still_counts_whatever_the_edge_says(two_live: World) -> None:
    world = two_live
    frozen(world, "unhealthy", seconds_ago=2)

    item = queries.status(world.host, world.store())

    assert item["healthy"] is False
    assert "unhealthy" in item["message"] and "stale" not in item["message"]


def test_stale_needs_three_intervals_and_at_least_thirty_seconds() -> None:
    def info(ago: float, interval_s: float) -> dict[str, Any]:
        return {"State": {"Running": True, "Health": {"Status": "starting", "Log": [{"End": docker_time(1000 - ago)}]}},
                "Config": {"Healthcheck": {"Interval": int(interval_s * 1e9)}}}

    assert not health.stale(info(29, 1), 1000)
    assert health.stale(info(31, 1), 1000)
    assert not health.stale(info(50, 20), 1000)  # 3 x 20 s
    assert health.stale(info(61, 20), 1000)
    assert not health.stale({"State": {"Running": True}}, 1000)  # no HEALTHCHECK: nothing to be stale
