"""`rollback --to VERSION` (issue 15): back to a release kept on this host other than the kept one, from its kept
image, without its migration; the database's revision must descend from that release's Alembic head (the fake
engine answers `alembic history -r A:B` as the test sets it). Fake engine and edge (tests/host/fakes.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import Behaviour
from world import SERVICE, World

from slipway_core import contract
from slipway_core.host import rollback_to
from slipway_core.host.docker import labels, running
from slipway_core.host.run import Failed

MIGRATE: dict[str, Any] = {"migrate_command": ["alembic", "upgrade", "head"], "backup_db": "notes_api"}
HEADS = {"v1.0.0": "0001", "v2.0.0": "0002", "v3.0.0": "0003"}


@pytest.fixture
def three(world: World) -> World:
    """v1, v2, v3 released in turn (each migrating one revision): v3 live, v2 kept, v1 kept by the list only."""
    world.docker.add_postgres()
    for n, (version, head) in enumerate(HEADS.items()):
        world.image(version, Behaviour(migrate_to=head))
        assert world.deploy(version, f"r{n + 1}", **MIGRATE)["result"] == "deployed"
    assert [r["version"] for r in world.state()["releases"]] == ["v3.0.0", "v2.0.0", "v1.0.0"]
    return world


def back_to(world: World, version: str, run_id: str = "rb") -> dict[str, Any]:
    return rollback_to.rollback_to(world.host, world.store(), world.run(run_id), world.spec("v3.0.0", **MIGRATE),
                                   120.0, version=version)


def refusal(world: World, version: str) -> Failed:
    """The Failed that `rollback --to version` raises (the test fails when it raises none)."""
    with pytest.raises(Failed) as failed:
        back_to(world, version)
    return failed.value


def test_back_to_an_older_kept_release_runs_its_image_against_the_newer_schema(three: World) -> None:
    world = three
    world.docker.alembic_history = (0, "0002 -> 0003 (head), add x\n0001 -> 0002, add y\n<base> -> 0001, init\n")
    migrations_before = [r for r in world.docker.runs if r.command[:2] == ["alembic", "upgrade"]]

    answer = back_to(world, "v1.0.0")

    assert answer["result"] == "deployed", answer
    assert "rolled back to v1.0.0" in answer["message"]
    assert "it runs against the newer revisions 0003, 0002 (expand/contract)" in answer["message"]
    assert world.serves() == "v1.0.0"
    assert [r for r in world.docker.runs if r.command[:2] == ["alembic", "upgrade"]] == migrations_before
    assert world.docker.revision == "0003"  # the schema stays
    asked = next(r for r in world.docker.runs if r.command[:2] == ["alembic", "history"])
    assert asked.command == ["alembic", "history", "-r", "0001:0003"]
    assert asked.image == world.ref("v3.0.0")  # the live image knows every revision up to the database's
    state = world.state()
    assert (state["live"]["version"], state["live"]["alembic_head"], state["kept"]["version"]) == (
        "v1.0.0", "0001", "v3.0.0")
    line = world.history()[-1]
    assert (line["action"], line["result"], line["version"], line["previous_version"]) == (
        "rollback", "rolled-back", "v1.0.0", "v3.0.0")
    world.assert_settled("rb")


def test_a_database_that_does_not_descend_from_the_release_s_head_is_refused_before_anything_starts(
    three: World,
) -> None:
    world = three
    world.docker.alembic_history = (255, "FAILED: Requested range 0001:0003 does not refer to ancestor/descendant "
                                         "revisions along the same branch")
    runs_before = len([r for r in world.docker.runs if r.detach])

    failed = refusal(world, "v1.0.0")

    assert failed.phase == "migrate"
    assert "the database is at revision 0003, which does not descend from 0001 (the head of v1.0.0)" in str(failed)
    assert "does not refer to ancestor/descendant revisions" in str(failed)
    answer = world.finish("rb", failed.phase, str(failed))
    assert answer["result"] == "failed"
    assert len([r for r in world.docker.runs if r.detach]) == runs_before  # no colour started
    assert world.serves() == "v3.0.0"
    world.assert_settled("rb")


def test_a_version_not_kept_here_is_refused_naming_the_kept_ones(three: World) -> None:
    failed = refusal(three, "v0.9.0")

    assert failed.phase == "preflight"
    assert "v0.9.0 is not among the releases of notes-api kept on this host (v3.0.0, v2.0.0, v1.0.0)" in str(failed)
    assert "slipway deploy --service notes-api --version v0.9.0" in str(failed)


def test_a_kept_release_whose_image_is_gone_is_refused(three: World) -> None:
    del three.docker.images[three.ref("v1.0.0")]

    failed = refusal(three, "v1.0.0")

    assert failed.phase == "image"
    assert "is no longer on this host; deploy it instead" in str(failed)


def test_to_the_kept_release_is_the_plain_rollback_of_its_kept_containers(three: World) -> None:
    world = three
    live_colour = world.state()["live"]["colour"]
    kept_name = contract.container_name(SERVICE, contract.other_colour(live_colour))
    kept = world.docker.inspect(kept_name)
    assert labels(kept)["slipway.version"] == "v2.0.0"

    answer = back_to(world, "v2.0.0")

    assert answer["result"] == "deployed"
    assert world.serves() == "v2.0.0"
    assert (world.docker.inspect(kept_name) or {}).get("Id") == (kept or {}).get("Id")  # the same container
    assert not [r for r in world.docker.runs if r.command[:2] == ["alembic", "history"]]


def test_to_the_live_version_changes_nothing(three: World) -> None:
    calls = len(three.docker.changes())

    answer = back_to(three, "v3.0.0")

    assert answer["result"] == "noop"
    assert len(three.docker.changes()) == calls
    assert three.lock() is None


def test_a_failing_health_gate_leaves_the_live_release_and_removes_the_started_one(three: World) -> None:
    world = three
    world.docker.alembic_history = (0, "0002 -> 0003 (head), x\n0001 -> 0002, y\n")
    world.docker.behaviours[world.ref("v1.0.0")] = Behaviour(unhealthy=True)

    failed = refusal(world, "v1.0.0")
    world.finish("rb", failed.phase, str(failed))

    assert failed.phase == "health"
    assert world.serves() == "v3.0.0"
    new = world.docker.inspect(contract.container_name(SERVICE, contract.other_colour(world.state()["live"]["colour"])))
    assert labels(new).get("slipway.version") == "v2.0.0"  # the kept release is back under its name
    assert not running(new)
    world.assert_settled("rb")


def test_deploying_a_release_kept_in_the_list_needs_no_migration_and_keeps_its_head(three: World) -> None:
    """An image whose migrations ran here (v1: neither live nor kept, but in the list) is deployed without its
    migration (its tool does not know the newer revisions), and its record keeps its own Alembic head."""
    world = three

    begun = world.begin("v1.0.0", "r4", **MIGRATE)

    assert "migrate" not in begun["todo"] and "backup" not in begun["todo"]
    answer = world.advance("v1.0.0", "r4", begun["todo"], **MIGRATE)
    assert answer["result"] == "deployed", answer
    assert world.docker.revision == "0003"
    assert world.state()["live"]["alembic_head"] == "0001"
