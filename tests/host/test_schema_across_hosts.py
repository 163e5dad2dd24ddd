"""The schema revision across hosts (issue 12): with the data host elsewhere there is no `postgres` container beside
the release, so the revision is read by the release's own Alembic (`alembic current` in a one-off container, over the
network as the migration connects). The first app host reads it after the migration and answers it; the controller
hands it to the other app hosts' record step, so every app host's state.json carries `migration_revision` and
`alembic_head` as on one VM, and `rollback --to`'s schema check works there. Fake engine (tests/host/fakes.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import Behaviour
from world import World

from slipway_core import cluster_rollout, contract
from slipway_core.host import prepare, rollback_to
from slipway_core.host.run import Failed

# As the role sends it when the data host is another host: no postgres container, the colours published.
ACROSS: dict[str, Any] = {"migrate_command": ["alembic", "upgrade", "head"], "backup_db": "", "postgres_container": "",
                          "publish_address": "10.0.1.21"}


def questions(world: World) -> list[Any]:
    return [r for r in world.docker.runs if r.command[:2] == ["alembic", "current"]]


def test_the_revision_is_read_by_alembic_over_the_network_when_no_postgres_container_is_here(world: World) -> None:
    world.image("v1.0.0")
    world.docker.revision = "0007"
    spec = world.spec("v1.0.0", **ACROSS)
    assert prepare.schema_revision(world.docker, "notes-api", spec, "r1") == "0007"
    asked = questions(world)[-1]
    assert asked.image == world.ref("v1.0.0")
    assert asked.env["DATABASE_URL"]  # the owner's connection, as the migration's
    assert asked.name == contract.migration_container_name("notes-api", "r1")
    assert asked.name not in world.docker.names()  # removed after the question


def test_an_unreachable_database_or_a_tool_that_is_not_alembic_gives_no_revision(world: World) -> None:
    world.image("v1.0.0")
    world.docker.revision, world.docker.revision_reachable = "0007", False
    assert prepare.schema_revision(world.docker, "notes-api", world.spec("v1.0.0", **ACROSS), "r1") is None
    not_alembic = world.spec("v1.0.0", **{**ACROSS, "migrate_command": ["./migrate"]})
    runs = len(world.docker.runs)
    assert prepare.schema_revision(world.docker, "notes-api", not_alembic, "r1") is None
    assert len(world.docker.runs) == runs  # nothing asked


def test_one_vm_still_reads_it_through_the_postgres_container_only(world: World) -> None:
    world.docker.add_postgres()
    world.docker.revision = "0003"
    world.image("v1.0.0", Behaviour(migrate_to="0003"))
    answer = world.deploy("v1.0.0", "r1", migrate_command=["alembic", "upgrade", "head"], backup_db="notes_api")
    assert answer["result"] == "deployed"
    assert not questions(world)
    assert world.state()["live"]["migration_revision"] == "0003"


@pytest.mark.parametrize("output", ["INFO  [alembic] Context impl.\n0a1b2c (head)\n", "0a1b2c\n",
                                    "0a1b2c (head) (effective head)\n"])
def test_alembic_current_s_output_is_read(output: str) -> None:
    assert prepare.current_of(output) == "0a1b2c"


@pytest.mark.parametrize("output", ["", "INFO  [alembic] Context impl.\n", "connection refused: host?\n"])
def test_no_revision_in_the_output_is_none(output: str) -> None:
    assert prepare.current_of(output) is None


def test_the_first_app_host_answers_the_revision_after_its_migration(world: World) -> None:
    world.image("v1.0.0", Behaviour(migrate_to="0005"))
    begun = world.begin("v1.0.0", "r1", start_when_ready=False, **ACROSS)
    assert "migrate" in begun["todo"]
    answer = world.advance("v1.0.0", "r1", ["migrate"], **ACROSS)
    assert answer["result"] == contract.CONTINUE
    assert answer["migration_revision"] == "0005"
    # The controller's record of that host keeps it (the settle hands it to the others).
    mine = cluster_rollout.record({}, "prepare", "notes-api", __import__("json").dumps(answer), rc=0)
    assert mine["notes-api"]["migration_revision"] == "0005"


def test_another_app_host_records_the_revision_the_controller_hands_it(world: World) -> None:
    """No migration here (the first app host ran it): state.json gets the revision from the spec."""
    world.image("v1.0.0")
    begun = world.begin("v1.0.0", "r1", start_when_ready=False, **{**ACROSS, "migrate_command": []})
    assert begun["result"] == contract.CONTINUE
    world.advance("v1.0.0", "r1", ["start", "health", "switch", "drain", "record"],
                  **{**ACROSS, "migrate_command": [], "migration_revision": "0005"})
    live = world.state()["live"]
    assert (live["migration_revision"], live["alembic_head"]) == ("0005", "0005")
    assert world.history()[-1]["migration_revision"] == "0005"


def test_rollback_to_checks_the_schema_across_hosts_with_the_live_image(world: World) -> None:
    """Across hosts the database's revision comes from `alembic current` in the live image; a revision that does not
    descend from the release's head is refused before anything starts."""
    for n, (version, head) in enumerate((("v1.0.0", "0001"), ("v2.0.0", "0002"), ("v3.0.0", "0003"))):
        world.image(version, Behaviour(migrate_to=head))
        world.begin(version, f"r{n + 1}", start_when_ready=False, **ACROSS)
        world.advance(version, f"r{n + 1}", ["migrate", "start", "health", "switch", "drain", "record"], **ACROSS)
    assert [r["alembic_head"] for r in world.state()["releases"]] == ["0003", "0002", "0001"]
    world.docker.alembic_history = (255, "FAILED: Requested range 0001:0003 does not refer to ancestor")
    with pytest.raises(Failed, match="does not descend from 0001"):
        rollback_to.rollback_to(world.host, world.store(), world.run("rb"), world.spec("v3.0.0", **ACROSS), 120.0,
                                version="v1.0.0")
    asked = questions(world)[-1]
    assert asked.image == world.ref("v3.0.0")
    assert world.serves() == "v3.0.0"
