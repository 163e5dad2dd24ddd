"""The rollout's steps on the fake host: what each changes, from the first deploy to a no-op."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from fakes import Behaviour
from world import SECRET, SERVICE, World

from slipway_core import contract
from slipway_core.host.docker import labels, running
from slipway_core.host.release import config_hash
from slipway_core.host.run import Failed


def test_first_deploy_makes_blue_live(world: World) -> None:
    world.image("v1.0.0")

    answer = world.deploy("v1.0.0", "r1")

    assert answer["result"] == "deployed"
    assert (answer["version"], answer["colour"], answer["previous_version"]) == ("v1.0.0", "blue", "")
    assert world.routed() == [f"{SERVICE}-blue"]
    assert world.serves() == "v1.0.0"
    live = world.state()["live"]
    assert (live["colour"], live["version"], live["run_id"]) == ("blue", "v1.0.0", "r1")
    assert live["image_id"] == world.docker.images[world.ref("v1.0.0")]
    assert live["config_hash"] == config_hash(world.spec("v1.0.0"))
    assert world.state()["kept"] is None
    [line] = world.history()
    assert (line["action"], line["result"], line["version"], line["who"]) == ("deploy", "deployed", "v1.0.0",
                                                                              "alice@laptop")
    assert set(line["durations"]) >= {"lock", "skip-check", "start", "health", "switch", "drain"}
    world.assert_settled("r1")
    targets = json.loads((world.tmp / "targets" / f"{SERVICE}.json").read_text())
    assert targets[0]["targets"] == [f"{SERVICE}-blue:8000"]
    assert targets[0]["labels"]["version"] == "v1.0.0"


def test_second_version_goes_green_and_keeps_blue_stopped(world: World) -> None:
    world.image("v1.0.0")
    world.image("v2.0.0", Behaviour(healthy_after=4))
    world.deploy("v1.0.0", "r1")

    answer = world.deploy("v2.0.0", "r2")

    assert (answer["result"], answer["colour"], answer["previous_version"]) == ("deployed", "green", "v1.0.0")
    assert "v1.0.0 kept stopped on blue" in answer["message"]
    assert world.routed() == [f"{SERVICE}-green"]
    assert world.serves() == "v2.0.0"
    blue = world.docker.inspect(f"{SERVICE}-blue")
    assert blue is not None
    assert not running(blue)
    state = world.state()
    assert (state["live"]["version"], state["kept"]["version"]) == ("v2.0.0", "v1.0.0")
    assert [line["version"] for line in world.history()] == ["v1.0.0", "v2.0.0"]
    assert world.history()[-1]["previous_version"] == "v1.0.0"
    # start_to_healthy: from docker run to the end of its first passing check (the fake's boot of 4 checks)
    assert world.history()[-1]["start_to_healthy"] == pytest.approx(4 * 0.05, abs=0.01)
    world.assert_settled("r2")


def test_third_version_replaces_the_kept_container(world: World) -> None:
    for version in ("v1.0.0", "v2.0.0", "v3.0.0"):
        world.image(version)
        assert world.deploy(version, f"r-{version}")["result"] == "deployed"

    blue = world.docker.inspect(f"{SERVICE}-blue")
    assert labels(blue)["slipway.version"] == "v3.0.0"
    assert running(blue)
    assert ("rename", f"{SERVICE}-blue", f"{SERVICE}-blue-kept") in world.docker.calls
    assert ("remove", f"{SERVICE}-blue-kept") in world.docker.calls
    assert world.state()["kept"]["version"] == "v2.0.0"
    world.assert_settled("r-v3.0.0")


def test_same_release_again_is_a_noop(world: World) -> None:
    world.image("v1.0.0")
    world.deploy("v1.0.0", "r1")
    calls = len(world.docker.calls)

    answer = world.deploy("v1.0.0", "r2")

    assert answer["result"] == "noop"
    assert (answer["colour"], answer["todo"]) == ("blue", [])
    assert world.docker.calls[calls:] == []
    assert world.lock() is None
    assert len(world.history()) == 1
    world.assert_settled("r2")


def test_changed_config_is_not_a_noop(world: World) -> None:
    world.image("v1.0.0")
    world.deploy("v1.0.0", "r1")

    answer = world.deploy("v1.0.0", "r2", env={"LOG_LEVEL": "debug"})

    assert (answer["result"], answer["colour"]) == ("deployed", "green")
    assert world.state()["live"]["config_hash"] == config_hash(world.spec("v1.0.0", env={"LOG_LEVEL": "debug"}))


def test_force_redeploys_the_same_release(world: World) -> None:
    world.image("v1.0.0")
    world.deploy("v1.0.0", "r1")

    answer = world.begin("v1.0.0", "r2", force=True)

    assert answer["result"] == contract.CONTINUE
    assert answer["colour"] == "green"


@pytest.mark.parametrize("deployed", [False, True])
def test_plan_changes_nothing(world: World, deployed: bool) -> None:
    world.image("v1.0.0")
    world.image("v2.0.0", on_host=False)
    if deployed:
        world.deploy("v1.0.0", "r1")
    calls, history = list(world.docker.calls), world.history()

    same = world.rollout("p1", world.spec("v1.0.0")).plan()
    other = world.rollout("p2", world.spec("v2.0.0")).plan()

    assert same["result"] == ("noop" if deployed else "planned")
    assert other["result"] == "planned"
    assert "would deploy v2.0.0" in other["message"]
    assert other["previous_version"] == ("v1.0.0" if deployed else "")
    assert world.docker.calls == calls
    assert world.history() == history
    assert world.lock() is None
    assert not os.path.exists(world.store().paths.run("p2"))


def test_begin_with_the_image_missing_starts_with_image(world: World) -> None:
    world.image("v1.0.0", on_host=False)

    answer = world.begin("v1.0.0", "r1")

    assert answer["result"] == contract.CONTINUE
    assert answer["todo"] == ["image", "start", "health", "switch", "drain", "record"]
    assert f"{SERVICE}-blue" not in world.docker.boxes  # start waits for the image
    assert world.lock() is not None
    final = world.advance("v1.0.0", "r1", answer["todo"])
    assert final["result"] == "deployed"
    assert ("pull", world.ref("v1.0.0"), "") in world.docker.calls


def test_begin_starts_the_colour_on_the_common_path(world: World) -> None:
    world.image("v1.0.0")

    answer = world.begin("v1.0.0", "r1")

    assert answer["todo"] == ["health", "switch", "drain", "record"]
    box = world.docker.boxes[f"{SERVICE}-blue"]
    assert box.labels["slipway.run-id"] == "r1"
    assert box.env["DATABASE_URL"] == SECRET
    assert world.store().run("r1")["proxy_prepared"] is True
    assert "set server be_notes_api/notes-api-blue health down" in world.haproxy.commands


def test_begin_without_start_when_ready_leaves_start_to_do(world: World) -> None:
    world.image("v1.0.0")

    answer = world.begin("v1.0.0", "r1", start_when_ready=False)

    assert answer["todo"] == ["start", "health", "switch", "drain", "record"]
    assert world.docker.names() == set()


MIGRATE: dict[str, Any] = {"migrate_command": ["alembic", "upgrade", "head"], "backup_db": "notes_api"}


def test_migration_with_a_new_image_backs_up_and_migrates(world: World) -> None:
    world.docker.add_postgres()
    world.image("v1.0.0", Behaviour(migrate_to="0001"))
    world.image("v2.0.0", Behaviour(migrate_to="0002"))
    world.deploy("v1.0.0", "r1", **MIGRATE)

    answer = world.begin("v2.0.0", "r2", **MIGRATE)

    assert answer["todo"] == ["backup", "migrate", "start", "health", "switch", "drain", "record"]
    assert f"{SERVICE}-green" not in world.docker.boxes  # nothing starts before the migration
    answer = world.advance("v2.0.0", "r2", ["backup", "migrate", "start"], **MIGRATE)
    assert answer["todo"] == ["health", "switch", "drain", "record"]
    record = world.store().run("r2")
    assert record["backup"] == "/var/backups/postgresql/notes_api-20260101T000000Z.dump"
    assert record["migration_revision"] == "0002"
    one_off = world.docker.runs[-2]
    assert (one_off.name, one_off.detach, one_off.command) == (
        contract.migration_container_name(SERVICE, "r2"), False, ["alembic", "upgrade", "head"])
    assert one_off.name not in world.docker.boxes  # removed after its run
    assert world.advance("v2.0.0", "r2", answer["todo"], **MIGRATE)["result"] == "deployed"
    assert world.history()[-1]["migration_revision"] == "0002"
    # The history line names the dump to restore from.
    assert world.history()[-1]["backup"] == "/var/backups/postgresql/notes_api-20260101T000000Z.dump"


def test_no_migration_for_an_image_whose_migrations_ran_here(world: World) -> None:
    world.docker.add_postgres()
    world.image("v1.0.0", Behaviour(migrate_to="0001"))
    world.image("v2.0.0", Behaviour(migrate_to="0002"))
    world.deploy("v1.0.0", "r1", **MIGRATE)
    world.deploy("v2.0.0", "r2", **MIGRATE)

    answer = world.begin("v1.0.0", "r3", **MIGRATE)  # back to the kept release's image

    assert answer["todo"] == ["health", "switch", "drain", "record"]
    assert world.docker.revision == "0002"
    assert world.advance("v1.0.0", "r3", answer["todo"], **MIGRATE)["result"] == "deployed"
    assert world.history()[-1]["backup"] == ""  # no migration, no backup: the line names none


@pytest.mark.parametrize(
    ("migrate_to", "said"), [("", "unchanged (still 0001)"), ("0002", "CHANGED from 0001 to 0002")]
)
def test_migration_failure_starts_nothing(world: World, migrate_to: str, said: str) -> None:
    world.docker.add_postgres()
    world.docker.revision = "0001"
    world.image("v1.0.0")
    world.image("v2.0.0", Behaviour(migrate_exit=3, migrate_to=migrate_to))
    world.deploy("v1.0.0", "r1")

    with pytest.raises(Failed) as failed:
        world.deploy("v2.0.0", "r2", **MIGRATE)

    assert failed.value.phase == "migrate"
    message = str(failed.value)
    assert "`alembic upgrade head` in registry.example.test/notes-api:v2.0.0 failed (exit 3)" in message
    assert f"schema revision {said}" in message
    assert "still 0001" not in message or migrate_to == ""
    assert f"{SERVICE}-green" not in world.docker.boxes
    assert world.docker.runs[-1].name == contract.migration_container_name(SERVICE, "r2")
    assert os.path.exists(world.store().paths.log("r2", "migrate"))
    assert world.routed() == [f"{SERVICE}-blue"]
