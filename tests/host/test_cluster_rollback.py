"""The host's part of a rollback across hosts (issue 12): `slipway-release rollback --begin [--to V]` locks, checks and
answers what it starts (the kept release's colour and version) and the steps left, starting nothing; the controller
then asks for them with `run --steps`, as for a deploy (start and gate on every app host, the switch on the edges,
drain and record; or `finish` on every app host when any failed). `run` takes the release the rollback chose (its
record), not the inventory's. Fake engine and edge (tests/host/fakes.py); the edge here is this host's own."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from fakes import Behaviour
from world import SERVICE, World

from slipway_core import contract
from slipway_core.host import main
from slipway_core.host.docker import running

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def release(world: World, monkeypatch: pytest.MonkeyPatch, capsys: Capsys) -> Any:
    """`slipway-release ARGS` on the fake host, with `stdin`: (exit code, the JSON answer)."""
    monkeypatch.setattr(main, "make_host", lambda args: world.host)

    def call(*argv: str, stdin: Any = None) -> tuple[int, Any]:
        capsys.readouterr()
        monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(stdin) if stdin is not None else ""))
        code = main.main(["--root", world.root, *argv], prog="/usr/local/sbin/slipway-release")
        out = capsys.readouterr().out
        return code, json.loads(out) if out.strip() else None

    return call


def test_rollback_begin_starts_nothing_then_run_steps_bring_the_kept_release_back(two_live: World,
                                                                                  release: Any) -> None:
    world = two_live
    kept_box = world.docker.boxes[f"{SERVICE}-blue"]
    inventory = world.spec("v2.0.0")  # what the role sends: the inventory's release, not the kept one

    code, begun = release("rollback", SERVICE, "--run-id", "rb1", "--begin", stdin=inventory)

    assert code == 0
    assert (begun["result"], begun["colour"], begun["version"], begun["previous_version"], begun["todo"]) == (
        contract.CONTINUE, "blue", "v1.0.0", "v2.0.0", ["start", "health", "switch", "drain", "record"])
    assert not kept_box.running and (world.lock() or {}).get("run_id") == "rb1"
    assert world.serves() == "v2.0.0"

    code, gated = release("run", SERVICE, "--run-id", "rb1", "--steps", "start,health", stdin=inventory)
    assert (code, gated["result"], gated["todo"]) == (0, contract.CONTINUE, ["switch", "drain", "record"])
    assert world.docker.boxes[f"{SERVICE}-blue"] is kept_box and kept_box.running  # the kept one, started again
    assert [r.name for r in world.docker.runs if r.name.startswith(f"{SERVICE}-blue")] == [f"{SERVICE}-blue"]
    assert world.serves() == "v2.0.0"  # nothing switched yet

    code, done = release("run", SERVICE, "--run-id", "rb1", "--steps", "switch,drain,record", stdin=inventory)
    assert (code, done["result"], done["version"], done["colour"]) == (0, "deployed", "v1.0.0", "blue")
    assert world.serves() == "v1.0.0"
    state = world.state()
    assert (state["live"]["version"], state["live"]["run_id"], state["kept"]["version"]) == ("v1.0.0", "rb1",
                                                                                           "v2.0.0")
    assert [line["run_id"] for line in world.history()] == ["r1", "r2"]  # a cluster run: one record, asked for
    hosts = [{"host": "app-1", "phase": "settle", "result": "ok", "message": ""}]
    assert release("record-rollout", SERVICE, "--run-id", "rb1", stdin={"hosts": hosts})[0] == 0
    line = world.history()[-1]
    assert (line["action"], line["result"], line["version"], line["hosts"]) == (
        "rollback", "rolled-back", "v1.0.0", hosts)
    world.assert_settled("rb1")


def test_a_kept_release_failing_its_gate_on_this_host_is_stopped_again(two_live: World, release: Any) -> None:
    world = two_live
    assert release("rollback", SERVICE, "--run-id", "rb1", "--begin", stdin=world.spec("v2.0.0"))[0] == 0
    world.docker.boxes[f"{SERVICE}-blue"].behaviour.unhealthy = True

    code, failed = release("run", SERVICE, "--run-id", "rb1", "--steps", "start,health", stdin=world.spec("v2.0.0"))

    assert (code, failed["result"], failed["failed_phase"]) == (contract.EXIT_FAILED, "failed", "health")
    assert "stopped again" in failed["message"]
    assert not running(world.docker.inspect(f"{SERVICE}-blue"))
    assert f"{SERVICE}-blue" in world.docker.names()  # kept, not removed
    assert world.serves() == "v2.0.0"
    world.assert_settled("rb1")


def test_another_host_failed_finish_stops_the_kept_release_here(two_live: World, release: Any) -> None:
    """This host's gate passed, another's did not: the controller's `finish` stops the kept containers again."""
    world = two_live
    release("rollback", SERVICE, "--run-id", "rb1", "--begin", stdin=world.spec("v2.0.0"))
    release("run", SERVICE, "--run-id", "rb1", "--steps", "start,health", stdin=world.spec("v2.0.0"))
    assert running(world.docker.inspect(f"{SERVICE}-blue"))

    answer = world.finish("rb1", "health", "app-2 failed in phase health: GET /health answered 500")

    assert (answer["result"], answer["failed_phase"]) == ("failed", "health")
    assert not running(world.docker.inspect(f"{SERVICE}-blue"))
    assert world.state()["live"]["version"] == "v2.0.0"
    assert world.history()[-1]["run_id"] == "r2"  # the rollback's line waits for record-rollout
    world.assert_settled("rb1")


def test_no_kept_release_is_refused_at_the_begin(world: World, release: Any) -> None:
    world.image("v1.0.0")
    world.deploy("v1.0.0", "r1")
    code, answer = release("rollback", SERVICE, "--run-id", "rb1", "--begin", stdin=world.spec("v1.0.0"))
    assert (code, answer["result"], answer["failed_phase"]) == (contract.EXIT_FAILED, "failed", "preflight")
    assert "has no kept release to roll back to (live: v1.0.0)" in answer["message"]
    assert world.lock() is None


def test_rollback_to_begin_checks_the_schema_then_run_starts_the_chosen_image(world: World, release: Any) -> None:
    """`rollback --to v1 --begin` with v3 live and v2 kept: the chosen release's image (not the inventory's) starts on
    the idle colour at `run`, with the secrets the controller sends."""
    migrate = {"migrate_command": ["alembic", "upgrade", "head"], "backup_db": "notes_api"}
    world.docker.add_postgres()
    for n, (version, head) in enumerate((("v1.0.0", "0001"), ("v2.0.0", "0002"), ("v3.0.0", "0003"))):
        world.image(version, Behaviour(migrate_to=head))
        world.deploy(version, f"r{n + 1}", **migrate)
    world.docker.alembic_history = (0, "0002 -> 0003 (head), x\n0001 -> 0002, y\n")
    inventory = world.spec("v3.0.0", **migrate)

    code, begun = release("rollback", SERVICE, "--run-id", "rb1", "--begin", "--to", "v1.0.0", stdin=inventory)
    assert (code, begun["result"], begun["version"], begun["colour"]) == (0, contract.CONTINUE, "v1.0.0", "green")
    assert world.serves() == "v3.0.0"

    code, gated = release("run", SERVICE, "--run-id", "rb1", "--steps", "start,health", stdin=inventory)
    assert code == 0, gated
    started = world.docker.runs[-1]
    assert (started.name, started.image) == (f"{SERVICE}-green", world.ref("v1.0.0"))
    assert started.env["DATABASE_URL"]  # the secrets the controller sent
    code, done = release("run", SERVICE, "--run-id", "rb1", "--steps", "switch,drain,record", stdin=inventory)
    assert (code, done["result"]) == (0, "deployed")
    assert world.serves() == "v1.0.0"
    assert world.state()["live"]["alembic_head"] == "0001"
