"""Workers (host/workers.py): one release moves every process. The new workers start with the new web colour, pass
their gate (health_command through docker exec, or still running after ready_after s), the web switches, then the
old workers get `docker stop` with their stop_timeout before the old web stops; any failure before the switch
removes the new processes and leaves the old web and the old workers running, naming the process that failed."""

from __future__ import annotations

import argparse
import io
import json
from typing import Any

import pytest
from fakes import Behaviour
from world import SERVICE, STALE_AFTER, World

from slipway_core import contract, worker_rules
from slipway_core.host import container_logs, main, queries, recovery, release
from slipway_core.host import workers as host_workers
from slipway_core.host.docker import labels, running
from slipway_core.host.run import Failed, Run

MAILER = {"command": ["python", "-m", "notes_api.worker"], "replicas": 1, "stop_timeout": 45,
          "health_command": [], "ready_after": 2}
WORKERS = {"mailer": MAILER}


def workers(**over: Any) -> dict[str, Any]:
    return {"mailer": {**MAILER, **over}}


def name(colour: str, worker: str = "mailer", replica: int = 0) -> str:
    return worker_rules.container(SERVICE, colour, worker, replica)


def deploy(world: World, version: str, run_id: str, behaviour: Behaviour | None = None,
           **over: Any) -> dict[str, Any]:
    if world.docker.image_id(world.ref(version)) is None:
        world.image(version, behaviour)
    return world.deploy(version, run_id, **{"workers": WORKERS, **over})


@pytest.fixture
def two_with_workers(world: World) -> World:
    """v1 (web + mailer) kept stopped on blue, v2 live on green."""
    deploy(world, "v1.0.0", "r1")
    deploy(world, "v2.0.0", "r2")
    return world


def run_command(world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], version: str,
                run_id: str, **over: Any) -> tuple[int, dict[str, Any]]:
    """`slipway-release run` of the steps after `start`, as the role asks, with the release on stdin."""
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(world.spec(version, **over))))
    store = world.store()
    args = argparse.Namespace(command="run", steps="health,switch,drain,record", service=SERVICE, run_id=run_id)
    code = main.run_command(world.host, store, Run(store, run_id), args)
    return code, json.loads(capsys.readouterr().out)


def test_a_worker_runs_the_release_s_image_and_settings_with_its_own_command(world: World) -> None:
    answer = deploy(world, "v1.0.0", "r1")

    assert answer["result"] == "deployed", answer
    web = next(box for box in world.docker.runs if box.name == f"{SERVICE}-blue")
    worker = next(box for box in world.docker.runs if box.name == name("blue"))
    assert worker.command == MAILER["command"]
    assert (worker.image, worker.network, worker.env, worker.hosts) == (web.image, web.network, web.env, web.hosts)
    assert (worker.cpus, worker.memory, worker.pids_limit, worker.read_only) == (
        web.cpus, web.memory, web.pids_limit, web.read_only)
    assert (worker.ip, worker.stop_timeout, worker.healthcheck, worker.restart_policy) == ("", 45, False,
                                                                                           web.restart_policy)
    argv = worker.argv()
    assert argv[-4:] == [web.image, *MAILER["command"]]
    assert {"--cap-drop", "--no-healthcheck", "--read-only"} <= set(argv) and "--ip" not in argv
    assert labels(world.docker.inspect(name("blue")))["slipway.worker"] == "mailer"
    assert world.state()["live"]["workers"] == WORKERS
    world.assert_settled("r1")


def test_a_rollout_starts_gates_switches_then_stops_the_old_workers(world: World) -> None:
    deploy(world, "v1.0.0", "r1")
    world.image("v2.0.0")
    seen: dict[str, list[str]] = {}

    def before(what: str, args: tuple[str, ...]) -> None:
        if what == "stop":
            seen.setdefault(args[0], world.routed())

    world.docker.before = before

    answer = deploy(world, "v2.0.0", "r2")

    assert answer["result"] == "deployed", answer
    calls = world.docker.calls
    order = [calls.index(call) for call in (("run", f"{SERVICE}-green", world.ref("v2.0.0")),
                                            ("run", name("green"), world.ref("v2.0.0")))]
    assert order == sorted(order), calls
    # The web had switched (and drained) when the old worker got SIGTERM; the old web's stop runs alongside.
    assert seen[name("blue")] == seen[f"{SERVICE}-blue"] == [f"{SERVICE}-green"]
    assert world.docker.stop_graces[name("blue")] == 45  # its stop_timeout to finish the job in hand
    assert not running(world.docker.inspect(name("blue")))  # kept stopped for a rollback
    assert running(world.docker.inspect(name("green")))
    world.assert_settled("r2")


def test_a_worker_without_health_command_must_still_run_after_ready_after(world: World) -> None:
    deploy(world, "v1.0.0", "r1")
    world.image("v2.0.0")
    spec: dict[str, Any] = {"workers": workers(ready_after=4)}
    begun = world.begin("v2.0.0", "r2", **spec)
    started = world.clock.time()

    world.advance("v2.0.0", "r2", begun["todo"], **spec)

    assert world.clock.time() - started >= 4  # the gate waited ready_after seconds since the start
    assert world.state()["live"]["version"] == "v2.0.0"


def test_a_worker_s_health_command_runs_through_docker_exec(world: World) -> None:
    probe = ["python", "-m", "notes_api.worker", "--check"]
    answer = deploy(world, "v1.0.0", "r1", workers=workers(health_command=probe))

    assert answer["result"] == "deployed", answer
    assert ("exec", name("blue"), *probe) in world.docker.calls
    box = next(box for box in world.docker.runs if box.name == name("blue"))
    argv = box.argv()
    assert argv[argv.index("--health-cmd") + 1] == "python -m notes_api.worker --check"  # Docker checks it on
    assert "--no-healthcheck" not in argv


@pytest.mark.parametrize("replicas", [1, 2])
def test_a_crashing_worker_fails_the_release_before_the_switch(
    two_with_workers: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], replicas: int
) -> None:
    world = two_with_workers
    world.image("v3.0.0")
    spec: dict[str, Any] = {"workers": workers(replicas=replicas)}
    begun = world.begin("v3.0.0", "r3", **spec)
    assert begun["result"] == contract.CONTINUE
    crashing = name("blue", replica=replicas - 1)  # the last replica exits 1 once started
    world.docker.boxes[crashing].running, world.docker.boxes[crashing].exit_code = False, 1

    code, answer = run_command(world, monkeypatch, capsys, "v3.0.0", "r3", **spec)

    shown = "mailer" if replicas == 1 else "mailer-2"
    assert (code, answer["result"], answer["failed_phase"]) == (1, "failed", "health")
    assert answer["message"].startswith(f"worker {shown} ({crashing}) exited 1 during its gate."), answer["message"]
    assert "the live release keeps running" in answer["message"]
    assert world.routed() == [f"{SERVICE}-green"] and world.serves() == "v2.0.0"
    assert running(world.docker.inspect(f"{SERVICE}-green")) and running(world.docker.inspect(name("green")))
    # The new processes are gone; v1's web and worker, set aside during the attempt, are back (stopped, kept).
    assert labels(world.docker.inspect(f"{SERVICE}-blue"))["slipway.version"] == "v1.0.0"
    assert labels(world.docker.inspect(name("blue")))["slipway.version"] == "v1.0.0"
    assert not running(world.docker.inspect(name("blue")))
    assert world.docker.inspect(name("blue", replica=1)) is None
    assert world.state()["live"]["version"] == "v2.0.0"
    world.assert_settled("r3")


def test_a_worker_whose_health_command_fails_is_named_and_removed(two_with_workers: World) -> None:
    world = two_with_workers
    world.image("v3.0.0", Behaviour(worker_health_exit=3))

    with pytest.raises(Failed) as failed:
        world.deploy("v3.0.0", "r3", workers=workers(health_command=["true"]))

    assert failed.value.phase == "health"
    assert f"worker mailer ({name('blue')}) was not ready within" in str(failed.value)
    assert "its health_command exited 3" in str(failed.value)
    assert labels(world.docker.inspect(name("blue")))["slipway.version"] == "v1.0.0"
    assert running(world.docker.inspect(name("green")))


def test_a_crashing_worker_image_fails_every_replica_s_gate(world: World) -> None:
    deploy(world, "v1.0.0", "r1")

    with pytest.raises(Failed) as failed:
        deploy(world, "v2.0.0", "r2", Behaviour(worker_exits=True))

    assert f"worker mailer ({name('green')}) exited 1 during its gate" in str(failed.value)
    assert world.docker.inspect(name("green")) is None and world.docker.inspect(f"{SERVICE}-green") is None
    assert running(world.docker.inspect(name("blue"))) and world.serves() == "v1.0.0"


def test_rollback_starts_the_kept_workers_again(two_with_workers: World) -> None:
    world = two_with_workers
    kept_box = world.docker.boxes[name("blue")]
    store = world.store()

    answer = recovery.rollback(world.host, store, Run(store, "rb1"), {}, STALE_AFTER)

    assert (answer["result"], answer["version"]) == ("deployed", "v1.0.0"), answer
    assert world.docker.boxes[name("blue")] is kept_box and running(world.docker.inspect(name("blue")))
    assert not running(world.docker.inspect(name("green")))
    assert world.docker.stop_graces[name("green")] == 45
    assert world.state()["live"]["workers"] == WORKERS
    world.assert_settled("rb1")


def test_rollback_refuses_when_a_kept_worker_is_gone(two_with_workers: World) -> None:
    world = two_with_workers
    world.docker.remove(name("blue"))
    store = world.store()

    with pytest.raises(Failed) as failed:
        recovery.rollback(world.host, store, Run(store, "rb1"), {}, STALE_AFTER)

    assert f"the kept worker container {name('blue')} is gone" in str(failed.value)
    assert world.routed() == [f"{SERVICE}-green"]


def test_the_config_hash_gains_workers_only_when_there_are_some(world: World) -> None:
    spec = world.spec("v1.0.0")
    before = release.config_hash(spec)  # a release recorded before workers existed

    assert release.config_hash({**spec, "workers": {}}) == before
    assert release.config_hash({**spec, "workers": WORKERS}) != before
    assert release.config_hash({**spec, "workers": workers(stop_timeout=60)}) != release.config_hash(
        {**spec, "workers": WORKERS})


def test_an_unchanged_release_is_a_noop_unless_a_worker_stopped(world: World) -> None:
    deploy(world, "v1.0.0", "r1")
    assert deploy(world, "v1.0.0", "r2")["result"] == "noop"
    world.docker.stop(name("blue"), 1)

    answer = deploy(world, "v1.0.0", "r3")

    assert answer["result"] == "deployed", answer
    assert running(world.docker.inspect(name("green")))


def test_status_lists_each_worker_with_its_state(two_with_workers: World) -> None:
    world = two_with_workers
    item = queries.status(world.host, world.store())
    assert item["healthy"] is True
    assert item["workers"] == [{"name": name("green"), "worker": "mailer", "state": "running"}]
    assert f"workers: {name('green')} running" in item["message"]

    world.docker.boxes[name("green")].running, world.docker.boxes[name("green")].exit_code = False, 2

    item = queries.status(world.host, world.store())
    assert item["healthy"] is False
    assert item["workers"][0]["state"] == "exited 2"


def test_prune_keeps_the_kept_release_s_workers(two_with_workers: World) -> None:
    world = two_with_workers
    assert world.docker.inspect(name("blue")) is not None  # v1's worker survived v2's prune (kept)
    deploy(world, "v3.0.0", "r3", workers={"mailer": MAILER, "indexer": MAILER})

    assert labels(world.docker.inspect(name("green")))["slipway.version"] == "v2.0.0"
    assert running(world.docker.inspect(name("blue", "indexer")))


def test_a_bad_worker_in_the_release_is_refused_before_anything_runs(world: World) -> None:
    with pytest.raises(Failed) as failed:
        release.check_spec(world.spec("v1.0.0", workers={"mailer": {"command": "python worker.py"}}))

    assert failed.value.code == contract.EXIT_USAGE
    assert "workers.mailer.command" in str(failed.value)


def test_logs_cover_the_colour_s_workers(two_with_workers: World) -> None:
    store = two_with_workers.store()
    assert container_logs.target(two_with_workers.docker, store, None) == (
        [f"{SERVICE}-green", name("green")], "v2.0.0, live")
    assert container_logs.target(two_with_workers.docker, store, "blue")[0] == [f"{SERVICE}-blue", name("blue")]


def test_a_worker_the_restart_policy_brought_back_counts_as_crashed() -> None:
    """`--restart unless-stopped` restarts a crashing worker: running again, but it exited during its gate."""
    restarted = {"State": {"Running": True, "Restarting": False, "ExitCode": 1}, "RestartCount": 2}
    assert host_workers.crashed(restarted) == "exited 1"
    assert host_workers.crashed({"State": {"Running": True, "Restarting": True, "ExitCode": 3}}) == "exited 3"
    assert host_workers.crashed({"State": {"Running": True, "ExitCode": 0}, "RestartCount": 0}) == ""
    assert host_workers.crashed(restarted, restarted_before=True) == ""  # a kept container's earlier life
    assert host_workers.crashed(None) == "disappeared"


def test_a_worker_restarted_by_docker_is_named_with_the_status_it_exits_with(two_with_workers: World) -> None:
    """Docker's restart policy brought the crashed worker back (running, status 0): the gate looks again until the
    crash loop shows the status it exits with."""
    world = two_with_workers
    world.image("v3.0.0")
    begun = world.begin("v3.0.0", "r3", workers=WORKERS)
    box = world.docker.boxes[name("blue")]
    original = world.docker.inspect
    looks = {"n": 0}

    def inspect(container: str) -> dict[str, Any] | None:
        info = original(container)
        if info is not None and container == name("blue"):
            looks["n"] += 1
            info["RestartCount"] = 1
            info["State"] = ({"Running": True, "ExitCode": 0} if looks["n"] < 4
                             else {"Running": False, "Restarting": True, "ExitCode": 7})
        return info

    world.docker.inspect = inspect  # type: ignore[method-assign,assignment]
    assert box.running

    with pytest.raises(Failed) as failed:
        world.advance("v3.0.0", "r3", [s for s in begun["todo"] if s != "start"], workers=WORKERS)

    assert f"worker mailer ({name('blue')}) exited 7 (restarted 1 time(s) by Docker) during its gate" in str(
        failed.value)


def test_a_run_that_stopped_after_start_is_cleaned_up_and_the_kept_workers_put_back(two_with_workers: World) -> None:
    world = two_with_workers
    world.image("v3.0.0")
    kept_box = world.docker.boxes[name("blue")]
    begun = world.begin("v3.0.0", "r3", workers=WORKERS)  # starts v3's web and worker on blue; v1's set aside
    assert begun["result"] == contract.CONTINUE
    assert world.docker.boxes[host_workers.aside(name("blue"))] is kept_box

    answer = world.finish("r3", "health", "the controller lost the connection")

    assert answer["result"] == "failed", answer
    assert world.docker.boxes[name("blue")] is kept_box and not kept_box.running  # v1's, kept stopped again
    assert running(world.docker.inspect(name("green"))) and world.serves() == "v2.0.0"
    world.assert_settled("r3")


def test_a_leftover_worker_never_replaces_the_kept_one_set_aside(two_with_workers: World) -> None:
    """A run killed mid-start left its worker under the name while the kept one is still set aside: the next
    start removes the leftover and keeps the kept one aside (then puts it back when that run fails too)."""
    world = two_with_workers
    world.image("v3.0.0")
    kept_box = world.docker.boxes[name("blue")]
    world.begin("v3.0.0", "r3", workers=WORKERS)
    world.docker.boxes[name("blue")].labels["slipway.run-id"] = "r-killed"  # as if another run had started it

    rollout = world.rollout("r3", world.spec("v3.0.0", workers=WORKERS))
    host_workers.start(rollout)

    assert world.docker.boxes[host_workers.aside(name("blue"))] is kept_box
    assert labels(world.docker.inspect(name("blue")))["slipway.run-id"] == "r3"
