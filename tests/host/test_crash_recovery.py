"""A run that stops between (or inside) any two steps, then what the controller does next (finish, or unlock):
the host ends in a known state, rolled forward once the proxy routed the new colour, and a fresh run is clean."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable

import pytest
from fakes import Behaviour, Crash
from world import SERVICE, World

from slipway_core.host import recovery
from slipway_core.host.docker import labels, running
from slipway_core.host.lock import Lock

V3 = "v3.0.0"
REST = ["health", "switch", "drain", "record"]


def crash_on_docker(world: World, what: str, name: str) -> None:
    def before(call: str, args: tuple[str, ...]) -> None:
        if call == what and args[0] == name:
            raise Crash(f"killed at docker {call} {name}")

    world.docker.before = before


def crash_on_sleep(world: World) -> None:
    def hook() -> None:
        raise Crash("killed while waiting")

    world.clock.on_sleep.append(hook)


def upto_begin(world: World, mp: pytest.MonkeyPatch) -> None:
    world.begin(V3, "r3", start_when_ready=False)


def upto_begin_started(world: World, mp: pytest.MonkeyPatch) -> None:
    world.begin(V3, "r3")


def in_start_after_set_aside(world: World, mp: pytest.MonkeyPatch) -> None:
    crash_on_docker(world, "run", f"{SERVICE}-blue")
    world.begin(V3, "r3")


def in_start_after_run(world: World, mp: pytest.MonkeyPatch) -> None:
    mp.setattr(world.proxy, "prepare", crash_raiser("killed before the proxy heard of it"))
    world.begin(V3, "r3")


def upto_start(world: World, mp: pytest.MonkeyPatch) -> None:
    world.begin(V3, "r3", start_when_ready=False)
    world.advance(V3, "r3", ["start"])


def in_health(world: World, mp: pytest.MonkeyPatch) -> None:
    world.begin(V3, "r3")
    crash_on_sleep(world)
    world.advance(V3, "r3", REST)


def upto_health(world: World, mp: pytest.MonkeyPatch) -> None:
    world.begin(V3, "r3")
    world.advance(V3, "r3", ["health"])


def in_switch_before_persist(world: World, mp: pytest.MonkeyPatch) -> None:
    world.begin(V3, "r3")
    mp.setattr(world.proxy, "persist", crash_raiser("killed before the live colour was written"))
    world.advance(V3, "r3", REST)


def in_switch_after_persist(world: World, mp: pytest.MonkeyPatch) -> None:
    world.begin(V3, "r3")
    world.http.proxy_hook = crash_raiser("killed while confirming")
    world.advance(V3, "r3", REST)


def in_switch_waiting_for_drain(world: World, mp: pytest.MonkeyPatch) -> None:
    world.begin(V3, "r3")
    world.haproxy.servers[("be_notes_api", f"{SERVICE}-green")].sessions = 3
    world.http.proxy_hook = lambda: crash_on_sleep(world)  # confirmed; the next sleep is the drain's
    world.advance(V3, "r3", REST)


def upto_switch(world: World, mp: pytest.MonkeyPatch) -> None:
    world.begin(V3, "r3")
    world.advance(V3, "r3", ["health", "switch"])


def in_drain(world: World, mp: pytest.MonkeyPatch) -> None:
    world.begin(V3, "r3")
    crash_on_docker(world, "stop", f"{SERVICE}-green")
    world.advance(V3, "r3", REST)


def upto_drain(world: World, mp: pytest.MonkeyPatch) -> None:
    world.begin(V3, "r3")
    world.advance(V3, "r3", ["health", "switch", "drain"])


def in_record_before_unlock(world: World, mp: pytest.MonkeyPatch) -> None:
    world.begin(V3, "r3")
    mp.setattr(Lock, "release", crash_raiser("killed before the unlock"))
    world.advance(V3, "r3", REST)


def crash_raiser(why: str) -> Callable[..., None]:
    def crash(*args: object, **kwargs: object) -> None:
        raise Crash(why)

    return crash


# (how the run got there, the phase the controller names, rolled forward)
CRASHES: dict[str, tuple[Callable[[World, pytest.MonkeyPatch], None], str, bool]] = {
    "after-begin": (upto_begin, "start", False),
    "after-begin-started": (upto_begin_started, "health", False),
    "in-start-after-set-aside": (in_start_after_set_aside, "lock", False),
    "in-start-after-run": (in_start_after_run, "lock", False),
    "after-start": (upto_start, "health", False),
    "in-health": (in_health, "switch", False),
    "after-health": (upto_health, "switch", False),
    "in-switch-before-persist": (in_switch_before_persist, "switch", False),
    "in-switch-after-persist": (in_switch_after_persist, "switch", True),
    "in-switch-waiting-for-drain": (in_switch_waiting_for_drain, "switch", True),
    "after-switch": (upto_switch, "switch", True),
    "in-drain": (in_drain, "switch", True),
    "after-drain": (upto_drain, "switch", True),
    "in-record-before-unlock": (in_record_before_unlock, "switch", True),
}


@pytest.fixture
def two_live(world: World) -> World:
    world.image("v1.0.0")
    world.image("v2.0.0")
    world.image(V3, Behaviour(healthy_after=3))
    world.deploy("v1.0.0", "r1")
    world.deploy("v2.0.0", "r2")
    return world


def crash(world: World, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    """Run until the crash point; the host program's process is gone afterwards (nothing of it stays)."""
    with monkeypatch.context() as mp, contextlib.suppress(Crash):  # the process died there
        CRASHES[point][0](world, mp)
    world.docker.before = None
    world.http.proxy_hook = None
    world.clock.on_sleep.clear()
    world.haproxy.servers[("be_notes_api", f"{SERVICE}-green")].sessions = 0
    gc.collect()  # the dead process's files (its flock) are closed


def assert_outcome(world: World, rolled_forward: bool) -> None:
    state = world.state()
    if rolled_forward:
        assert (state["live"]["version"], state["live"]["colour"], state["kept"]["version"]) == (V3, "blue", "v2.0.0")
        assert world.serves() == V3
        assert not running(world.docker.inspect(f"{SERVICE}-green"))
    else:
        assert (state["live"]["version"], state["kept"]["version"]) == ("v2.0.0", "v1.0.0")
        assert world.serves() == "v2.0.0"
        blue = world.docker.inspect(f"{SERVICE}-blue")  # the kept release, back under its name
        assert labels(blue)["slipway.version"] == "v1.0.0"
        assert not running(blue)


@pytest.mark.parametrize("point", list(CRASHES))
def test_finish_after_a_crash(world: World, two_live: World, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    _, phase, rolled_forward = CRASHES[point]
    crash(world, monkeypatch, point)
    assert world.lock() is not None  # the crash left it

    answer = world.finish("r3", phase, "the connection to the host was lost")

    world.assert_settled("r3")
    assert_outcome(world, rolled_forward)
    lines = [line for line in world.history() if line["run_id"] == "r3"]
    if rolled_forward:
        assert answer["result"] == "deployed"
        assert [line["result"] for line in lines] == ["deployed"]
        assert answer["message"].startswith(f"{V3} is live on blue") or "recorded as live" in answer["message"]
    else:
        assert (answer["result"], answer["failed_phase"]) == ("failed", phase)
        assert answer["message"].startswith("the connection to the host was lost")
        assert [(line["result"], line["failed_phase"]) for line in lines] == [("failed", phase)]

    # The controller's next deploy of the same version: a no-op when it was rolled forward, else a clean deploy.
    again = world.deploy(V3, "r4")
    assert again["result"] == ("noop" if rolled_forward else "deployed")
    world.assert_settled("r4")
    assert world.serves() == V3


@pytest.mark.parametrize("point", list(CRASHES))
def test_unlock_after_a_crash(world: World, two_live: World, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    _, _, rolled_forward = CRASHES[point]
    crash(world, monkeypatch, point)

    released = recovery.unlock(world.host, [world.store()], "r3", False, "the controller was killed")["released"]

    assert [item["lock"]["run_id"] for item in released] == ["r3"]
    world.assert_settled("r3")
    assert_outcome(world, rolled_forward)
    assert world.deploy(V3, "r4")["result"] == ("noop" if rolled_forward else "deployed")
    world.assert_settled("r4")


@pytest.mark.parametrize("point", ["after-begin-started", "in-start-after-set-aside", "in-start-after-run",
                                   "after-start", "in-health", "after-health"])
def test_the_same_run_begun_again_after_a_crash(world: World, two_live: World, monkeypatch: pytest.MonkeyPatch,
                                                point: str) -> None:
    """A controller retrying its run (same run id) before the switch: it takes its own lock and goes on."""
    crash(world, monkeypatch, point)

    answer = world.deploy(V3, "r3")

    assert answer["result"] == "deployed"
    world.assert_settled("r3")
    assert world.serves() == V3
    assert world.state()["kept"]["version"] == "v2.0.0"


def test_finish_twice_changes_nothing_more(world: World, two_live: World, monkeypatch: pytest.MonkeyPatch) -> None:
    crash(world, monkeypatch, "after-start")
    first = world.finish("r3", "health", "lost")
    calls, history = len(world.docker.calls), world.history()

    second = world.finish("r3", "health", "lost again")

    assert second == first
    assert world.docker.calls[calls:] == []
    assert world.history() == history


def test_finish_of_a_run_that_never_began(world: World, two_live: World) -> None:
    answer = world.finish("r9", "", "")

    assert (answer["result"], answer["failed_phase"]) == ("failed", "lock")
    assert answer["message"] == "the run stopped before it took the lock"
    assert world.history()[-1]["run_id"] == "r2"


def test_a_repeated_step_runs_once(world: World, two_live: World) -> None:
    world.begin(V3, "r3", start_when_ready=False)
    world.advance(V3, "r3", ["start"])
    runs = len(world.docker.runs)

    answer = world.advance(V3, "r3", ["start", "health"])

    assert len(world.docker.runs) == runs
    assert answer["todo"] == ["switch", "drain", "record"]
    assert world.advance(V3, "r3", ["switch", "drain", "record"])["result"] == "deployed"
    world.assert_settled("r3")


def test_the_proxy_routing_a_stopped_new_colour_needs_a_person(world: World, two_live: World,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    crash(world, monkeypatch, "after-switch")
    world.docker.stop(f"{SERVICE}-blue", 0)  # and then the new container died

    answer = world.finish("r3", "switch", "lost")

    assert answer["result"] == "unknown"
    assert "which is not running: the service is down" in answer["message"]
    assert "slipway-proxy switch notes-api green" in answer["message"]
    assert world.lock() is None
    assert world.history()[-1]["result"] == "failed"
