"""A worker-only service (issue 15): workers and no web process (replicas 0, no port, no domain). Its rollout is
migrate -> start the new workers -> their gates -> SIGTERM + stop_timeout to the old workers: no web colour, no HTTP
check and never a call to the edge (the service is unknown to the proxy here, so any call would fail the run). A
failure before the end removes the new workers and leaves the old ones running, naming the worker; no-op, rollback
(and --to), status, logs, jobs, recovery and releases kept/pruned work for it."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import Behaviour
from world import STALE_AFTER, World

from slipway_core import contract, worker_rules
from slipway_core.host import container_logs, jobs, queries, recovery, release, rollback_to
from slipway_core.host.docker import labels, running
from slipway_core.host.run import Failed, Run
from slipway_core.host.steps import Rollout
from slipway_core.host.store import Store

WO = "mailer-svc"  # not among the proxy's services: the rollout must never ask the edge about it
MAILER = {"command": ["python", "-m", "notes_api.worker"], "replicas": 1, "stop_timeout": 40,
          "health_command": [], "ready_after": 2}


def name(colour: str, replica: int = 0) -> str:
    return worker_rules.container(WO, colour, "mailer", replica)


def spec(world: World, version: str, **over: Any) -> dict[str, Any]:
    """The release as the role sends it for a worker-only service: no port, domain or health path; replicas 0."""
    found = {k: v for k, v in world.spec(version).items() if k not in ("port", "domain", "health_path")}
    return {**found, "service": WO, "replicas": 0, "workers": {"mailer": MAILER}, **over}


def store(world: World) -> Store:
    return Store(world.root, WO, world.clock)


def deploy(world: World, version: str, run_id: str, behaviour: Behaviour | None = None,
           **over: Any) -> dict[str, Any]:
    """begin, then the steps left, as the role asks (the release checked as the host program checks stdin)."""
    if world.docker.image_id(world.ref(version)) is None:
        world.image(version, behaviour)
    wanted = release.check_spec(spec(world, version, **over))
    s = store(world)
    answer = Rollout(world.host, s, Run(s, run_id), wanted).begin(STALE_AFTER, False, True)
    if answer["result"] != contract.CONTINUE:
        return answer
    return Rollout(world.host, s, Run(s, run_id), wanted).advance(answer["todo"])


@pytest.fixture
def two(world: World) -> World:
    """v1 kept stopped on blue, v2 live on green."""
    assert deploy(world, "v1.0.0", "r1")["result"] == "deployed"
    assert deploy(world, "v2.0.0", "r2")["result"] == "deployed"
    return world


def assert_only_workers(world: World) -> None:
    """No web container of the service was ever started, and the edge routes nothing new."""
    ran = [box.name for box in world.docker.runs if labels(world.docker.inspect(box.name)).get(
        "slipway.service") == WO or box.name.startswith(f"{WO}-")]
    assert ran and all(n.startswith((f"{WO}-blue-mailer", f"{WO}-green-mailer", f"{WO}-migrate-")) for n in ran), ran
    assert world.routed() == []


def test_a_worker_only_release_runs_only_its_workers(world: World) -> None:
    answer = deploy(world, "v1.0.0", "r1")

    assert answer["result"] == "deployed", answer
    assert answer["message"].startswith("v1.0.0 is live on blue")
    assert running(world.docker.inspect(name("blue")))
    assert_only_workers(world)
    live = store(world).live() or {}
    assert (live["replicas"], live["version"], live["workers"]) == (0, "v1.0.0", {"mailer": MAILER})
    assert live["image_id"] == world.docker.image_id(world.ref("v1.0.0"))
    assert not {"port", "domain", "health_path"} & set(live)
    assert not (world.tmp / "targets" / f"{WO}.json").exists()  # nothing for Prometheus to scrape


def test_the_rollout_migrates_starts_gates_then_stops_the_old_workers(world: World) -> None:
    deploy(world, "v1.0.0", "r1")
    world.image("v2.0.0", Behaviour(migrate_to="0002"))

    answer = deploy(world, "v2.0.0", "r2", migrate_command=["alembic", "upgrade", "head"])

    assert answer["result"] == "deployed", answer
    calls = world.docker.calls
    order = [calls.index(call) for call in (
        ("run", contract.migration_container_name(WO, "r2"), world.ref("v2.0.0")),
        ("run", name("green"), world.ref("v2.0.0")),
        ("stop", name("blue")))]
    assert order == sorted(order), calls
    assert world.docker.stop_graces[name("blue")] == 40  # SIGTERM and its stop_timeout to finish the job in hand
    assert not running(world.docker.inspect(name("blue")))  # kept stopped for a rollback
    assert running(world.docker.inspect(name("green")))
    assert (store(world).live() or {})["colour"] == "green"
    assert_only_workers(world)
    assert [line["result"] for line in store(world).history(10)] == ["deployed", "deployed"]


def test_a_crashing_worker_fails_the_release_and_the_old_worker_runs_on(two: World) -> None:
    world = two
    live_box = world.docker.boxes[name("green")]

    with pytest.raises(Failed) as failed:
        deploy(world, "v3.0.0", "r3", Behaviour(worker_exits=True))

    assert failed.value.phase == "health"
    assert str(failed.value).startswith(f"worker mailer ({name('blue')}) exited 1 during its gate")
    assert "the live release keeps running" in str(failed.value)
    assert world.docker.boxes[name("green")] is live_box and running(world.docker.inspect(name("green")))
    assert labels(world.docker.inspect(name("blue")))["slipway.version"] == "v1.0.0"  # the kept one, put back
    assert not running(world.docker.inspect(name("blue")))
    assert (store(world).live() or {})["version"] == "v2.0.0"


def test_an_unchanged_release_is_a_noop_unless_its_worker_stopped(two: World) -> None:
    world = two
    assert deploy(world, "v2.0.0", "r3")["result"] == "noop"

    world.docker.boxes[name("green")].running = False

    answer = deploy(world, "v2.0.0", "r4")
    assert answer["result"] == "deployed", answer
    assert running(world.docker.inspect(name("blue")))


def test_rollback_starts_the_kept_workers_without_the_edge(two: World) -> None:
    world = two
    kept_box = world.docker.boxes[name("blue")]
    s = store(world)

    answer = recovery.rollback(world.host, s, Run(s, "rb1"), spec(world, "v2.0.0"), STALE_AFTER)

    assert (answer["result"], answer["version"]) == ("deployed", "v1.0.0"), answer
    assert world.docker.boxes[name("blue")] is kept_box and running(world.docker.inspect(name("blue")))
    assert not running(world.docker.inspect(name("green")))
    assert world.docker.stop_graces[name("green")] == 40
    assert (s.live() or {})["colour"] == "blue"


def test_rollback_to_a_kept_release_starts_its_workers_from_its_image(two: World) -> None:
    world = two
    deploy(world, "v3.0.0", "r3")
    s = store(world)

    answer = rollback_to.rollback_to(world.host, s, Run(s, "rb2"), spec(world, "v3.0.0"), STALE_AFTER,
                                     version="v1.0.0")

    assert (answer["result"], answer["version"]) == ("deployed", "v1.0.0"), answer
    live = s.live() or {}
    assert (live["version"], live["colour"]) == ("v1.0.0", "green")
    assert labels(world.docker.inspect(name("green")))["slipway.version"] == "v1.0.0"
    assert running(world.docker.inspect(name("green"))) and not running(world.docker.inspect(name("blue")))


def test_older_releases_are_pruned_and_the_kept_workers_stay(world: World) -> None:
    for number in range(1, 5):
        assert deploy(world, f"v{number}.0.0", f"r{number}")["result"] == "deployed"

    assert [r["version"] for r in store(world).state()["releases"]] == ["v4.0.0", "v3.0.0", "v2.0.0"]
    assert world.docker.image_id(world.ref("v1.0.0")) is None
    assert {world.docker.image_id(world.ref(f"v{n}.0.0")) is not None for n in (2, 3, 4)} == {True}
    assert {n for n in world.docker.names() if n.startswith(WO)} == {name("blue"), name("green")}


def test_status_says_worker_only_and_is_healthy_while_its_workers_run(two: World) -> None:
    world = two
    item = queries.status(world.host, store(world))
    assert item["healthy"] is True, item
    assert item["message"].startswith(f"worker-only (no web process); workers: {name('green')} running")

    world.docker.boxes[name("green")].running, world.docker.boxes[name("green")].exit_code = False, 2
    item = queries.status(world.host, store(world))
    assert item["healthy"] is False
    assert f"workers: {name('green')} exited 2" in item["message"]


def test_logs_and_jobs_use_the_live_worker(two: World) -> None:
    world = two
    names, what = container_logs.target(world.docker, store(world), None)
    assert (names, what) == ([name("green")], "v2.0.0, live")
    env = jobs.live_env(world.docker, store(world), store(world).live() or {})
    assert env["DATABASE_URL"].startswith("postgresql://")


def test_a_run_stopped_after_its_gate_is_rolled_forward_and_one_stopped_before_is_undone(two: World) -> None:
    world = two
    s = store(world)
    wanted = release.check_spec(spec(world, "v3.0.0"))
    world.image("v3.0.0")
    begun = Rollout(world.host, s, Run(s, "r3"), wanted).begin(STALE_AFTER, False, True)
    Rollout(world.host, s, Run(s, "r3"), wanted).advance(["health"])  # then the controller lost the host

    answer = recovery.finish(world.host, s, Run(s, "r3"), "switch", "connection lost")

    assert begun["todo"][0] == "health" and answer["result"] == "failed"
    assert labels(world.docker.inspect(name("blue")))["slipway.version"] == "v1.0.0"
    assert (s.live() or {})["version"] == "v2.0.0" and running(world.docker.inspect(name("green")))

    Rollout(world.host, s, Run(s, "r4"), wanted).begin(STALE_AFTER, False, True)
    Rollout(world.host, s, Run(s, "r4"), wanted).advance(["health", "switch"])

    answer = recovery.finish(world.host, s, Run(s, "r4"), "drain", "connection lost")

    assert answer["result"] == "deployed", answer
    assert "rolled forward" in answer["message"]
    assert (s.live() or {})["version"] == "v3.0.0" and not running(world.docker.inspect(name("green")))


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"workers": {}}, "has no web process (replicas 0) and no worker"),
        ({"publish_address": "10.0.0.5"}, "worker-only service (no port, no domain): those run on one VM only for "
                                          "now, not across hosts (issue 15)"),
        ({"replicas": "x"}, "replicas 'x' is not a whole number"),
    ],
)
def test_a_bad_worker_only_release_is_refused_before_anything_runs(world: World, over: dict[str, Any],
                                                                   message: str) -> None:
    with pytest.raises(Failed) as failed:
        release.check_spec(spec(world, "v1.0.0", **over))
    assert failed.value.phase == "preflight" and message in str(failed.value)
    assert world.docker.calls == []


def test_a_web_release_still_needs_its_port_domain_and_health_path(world: World) -> None:
    web = world.spec("v1.0.0")
    del web["domain"]
    with pytest.raises(Failed, match="lacks 'domain'"):
        release.check_spec(web)
