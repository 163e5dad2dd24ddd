"""The deploy lock, the store, a run's record, the read-only queries and the system helpers."""

from __future__ import annotations

import gc
import json
import os
import stat
import time

import pytest
from fakes import FakeClock
from world import SERVICE, World

from slipway_core import contract
from slipway_core.host import queries, system
from slipway_core.host.lock import Lock, LockRefused, NotHolder
from slipway_core.host.run import Failed, Run
from slipway_core.host.store import Store, services


@pytest.fixture
def store(tmp_path: os.PathLike[str]) -> Store:
    return Store(str(tmp_path), SERVICE, FakeClock())


def take(store: Store, run_id: str, version: str = "v1.0.0") -> Lock:
    lock = Lock(store)
    lock.take(run_id, f"{run_id}-holder", "deploy", version, 120)
    return lock


# ------------------------------------------------------------------------------------------------------- lock
def test_a_concurrent_run_is_refused_naming_the_holder(store: Store) -> None:
    first = take(store, "r1")
    before = first.held()

    with pytest.raises(LockRefused) as refused:
        take(store, "r2", "v2.0.0")

    message = str(refused.value)
    assert ("is being deployed by run r1 (r1-holder, deploy of v1.0.0, since 2026-01-01T00:00:00Z, last progress: "
            "lock at 2026-01-01T00:00:00Z)") in message
    assert "Nothing was changed" in message
    assert first.held() == before


def test_a_lock_nobody_works_under_is_reported_stale(store: Store) -> None:
    first = take(store, "r1")
    assert Lock(store).busy() is True  # its process works for it (another open file of .active sees the flock)
    assert first.busy() is False  # ... and is not in its own way
    del first  # ... until it dies
    gc.collect()
    assert isinstance(store.clock, FakeClock)
    store.clock.advance(300)

    with pytest.raises(LockRefused) as refused:
        take(store, "r2")

    assert "looks STALE: no command of it has run for 300s" in str(refused.value)
    assert f"take it over: slipway unlock --env <env> --service {SERVICE} --reason '<why>'" in str(refused.value)
    assert Lock(store).holds("r1")


def test_an_old_heartbeat_with_a_working_process_is_not_stale(store: Store) -> None:
    holder = take(store, "r1")  # its process still works (holds the flock on .active)
    assert isinstance(store.clock, FakeClock)
    store.clock.advance(300)

    with pytest.raises(LockRefused) as refused:
        take(store, "r2")

    assert "STALE" not in str(refused.value)
    assert "is being deployed by run r1" in str(refused.value)
    assert holder.holds("r1")


def test_the_same_run_takes_its_lock_again(store: Store) -> None:
    take(store, "r1")
    gc.collect()
    assert isinstance(store.clock, FakeClock)
    store.clock.advance(30)

    take(store, "r1")

    held = Lock(store).held()
    assert held is not None
    assert held["heartbeat"] == store.clock.time()


def test_an_unreadable_lock_is_refused(store: Store) -> None:
    with open(store.paths.lock, "w", encoding="utf-8") as handle:
        handle.write('{"run_id": "r1", "hold')

    with pytest.raises(LockRefused, match="is unreadable"):
        take(store, "r2")


def test_heartbeat_by_another_run_is_refused(store: Store) -> None:
    with pytest.raises(NotHolder, match=r"does not hold the lock of notes-api \(held by nobody\)"):
        Lock(store).heartbeat("r2")
    take(store, "r1")

    with pytest.raises(NotHolder, match=r"held by run r1 \(r1-holder"):
        Lock(store).heartbeat("r2")


def test_release_only_by_the_holder_unless_forced(store: Store) -> None:
    assert Lock(store).release("r1") is False
    take(store, "r1")

    assert Lock(store).release("r2") is False
    assert Lock(store).holds("r1")
    assert Lock(store).release(None) is True
    assert Lock(store).held() is None


# ------------------------------------------------------------------------------------------------------ store
def test_state_starts_empty_and_is_written_readable(store: Store) -> None:
    assert store.state() == {"service": SERVICE, "live": None, "kept": None}
    assert store.live() is None

    store.save_state({"colour": "blue", "version": "v1.0.0"}, None)

    assert store.live() == {"colour": "blue", "version": "v1.0.0"}
    assert store.state()["updated_at"] == "2026-01-01T00:00:00Z"
    assert stat.S_IMODE(os.stat(store.paths.state).st_mode) == 0o644
    assert not [name for name in os.listdir(store.paths.dir) if ".tmp." in name]


def test_history_keeps_the_last_lines_and_skips_broken_ones(store: Store) -> None:
    assert store.history(5) == []
    for i in range(5):
        store.append_history({"run_id": f"r{i}", "result": "deployed"})
    with open(store.paths.history, "a", encoding="utf-8") as handle:
        handle.write("{not json\n")

    lines = store.history(3)

    assert [line["run_id"] for line in lines] == ["r3", "r4"]
    assert all(line["service"] == SERVICE for line in lines)
    assert store.history(0) == []


def test_services_are_the_state_directories(tmp_path: os.PathLike[str]) -> None:
    root = os.path.join(str(tmp_path), "services")
    assert services(root) == []
    for name in ("notes-api", "billing", "Not_A_Service"):
        os.makedirs(os.path.join(root, name))

    assert services(root) == ["billing", "notes-api"]


def test_runs_and_logs(store: Store) -> None:
    assert store.run("r1") == {}
    store.save_run("r1", {"run_id": "r1"})
    path = store.save_log("r1", "health", "booting\ncrashed")

    assert store.run("r1") == {"run_id": "r1"}
    assert stat.S_IMODE(os.stat(store.paths.run("r1")).st_mode) == 0o600
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == "booting\ncrashed\n"
    with pytest.raises(contract.InputRefused):
        store.run("../etc")


# --------------------------------------------------------------------------------------------------------- run
def test_a_run_times_its_phases_and_answers_in_the_schema(store: Store) -> None:
    run = Run(store, "r1")
    clock = store.clock
    assert isinstance(clock, FakeClock)
    for seconds in (1.5, 2.25):
        with run.phase("health"):
            clock.sleep(seconds)
    run.add_duration("drain", 0.5)
    run.data["todo"] = ["health", "switch"]
    run.done("health")

    answer = run.answer("continue", version="v1.0.0", colour="blue")

    assert answer["durations"] == {"health": 3.75, "drain": 0.5}
    assert answer["todo"] == ["switch"]
    assert set(answer) == set(contract.RESULT_KEYS)
    assert Run(store, "r1").data["done"] == ["health"]  # saved
    assert Run(store, "r1").report() == answer


def test_failed_defaults_to_exit_1() -> None:
    assert Failed("health", "x").code == contract.EXIT_FAILED
    assert Failed("switch", "x", contract.EXIT_NEEDS_PERSON).code == 3


# ----------------------------------------------------------------------------------------------------- queries
def test_status_of_a_service_never_deployed(world: World) -> None:
    assert queries.status(world.host, world.store()) == {"service": SERVICE, "colour": "", "version": "",
                                                         "healthy": False, "message": "never deployed"}


def test_status_reports_health_routing_kept_and_lock(world: World) -> None:
    world.image("v1.0.0")
    world.image("v2.0.0")
    world.deploy("v1.0.0", "r1")
    world.deploy("v2.0.0", "r2")
    item = queries.status(world.host, world.store())
    assert (item["colour"], item["version"], item["healthy"]) == ("green", "v2.0.0", True)
    assert item["message"] == "container running, healthy; kept v1.0.0 on blue"

    world.docker.stop(f"{SERVICE}-green", 0)
    world.proxy.persist(SERVICE, "blue")
    take(world.store(), "r3")
    item = queries.status(world.host, world.store())

    assert item["healthy"] is False
    assert item["message"].startswith("container NOT running, healthy; proxy routes blue; kept v1.0.0 on blue; "
                                      "LOCKED by run r3")


def test_status_without_a_proxy_here_or_with_one_that_fails(world: World) -> None:
    world.image("v1.0.0")
    world.deploy("v1.0.0", "r1")
    world.host.proxy = None
    assert queries.status(world.host, world.store())["healthy"] is True

    world.host.proxy = world.proxy
    world.proxy.settings = {**world.proxy.settings, "services": {}}
    item = queries.status(world.host, world.store())
    assert item["healthy"] is False
    assert "proxy routes None" in item["message"]


def test_history_of_several_services_is_in_time_order(tmp_path: os.PathLike[str]) -> None:
    clock = FakeClock()
    a, b = Store(str(tmp_path), "alpha", clock), Store(str(tmp_path), "beta", clock)
    a.append_history({"run_id": "a1"})
    clock.advance(10)
    b.append_history({"run_id": "b1"})
    clock.advance(10)
    a.append_history({"run_id": "a2"})

    assert [line["run_id"] for line in queries.history([b, a], 10)] == ["a1", "b1", "a2"]


# ------------------------------------------------------------------------------------------------------ system
def test_wait_for_asks_at_least_once_and_times_out() -> None:
    clock = FakeClock()
    assert system.wait_for(clock, lambda: True, 0) is True
    asked: list[float] = []

    def never() -> bool:
        asked.append(clock.monotonic())
        return False

    assert system.wait_for(clock, never, 1.0, interval=0.25) is False
    assert asked[-1] - asked[0] == pytest.approx(1.0)


def test_write_json_and_read_json(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(str(tmp_path), "x.json")
    system.write_json(path, {"b": 1, "a": [1]}, 0o600)
    with open(path, encoding="utf-8") as handle:
        assert json.load(handle) == {"a": [1], "b": 1}
    assert system.read_json(path) == {"a": [1], "b": 1}
    system.write_json(path, [1, 2], 0o600)
    assert system.read_json(path) is None  # not an object
    assert system.read_json(path + ".missing") is None


def test_background_and_the_real_clock() -> None:
    assert system.Background(lambda: 42).value() == 42
    assert system.Background(lambda: 1 / 0).value() is None
    clock = system.Clock()
    before = clock.monotonic()
    clock.sleep(0)
    assert clock.monotonic() >= before
    assert clock.iso().endswith("Z") and abs(clock.time() - time.time()) < 5
    assert system.tail_text("a\nb\nc\n", 2) == "b\nc"
