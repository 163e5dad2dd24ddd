"""The one history record of a cluster rollout (issue 12): a run begun with `begin --cluster` (or `rollback --begin`)
keeps its history line in its record; `record-rollout` appends it once, on the app host the controller picks, with
every host's result (`hosts`). A run without --cluster (one VM) appends its line as always. Fake engine and edge."""

from __future__ import annotations

import os
from typing import Any

import pytest
from fakes import Behaviour
from world import SERVICE, World

from slipway_core import contract

Capsys = pytest.CaptureFixture[str]
HOSTS = [{"host": "app-1", "phase": "settle", "result": "ok", "message": ""},
         {"host": "app-2", "phase": "settle", "result": "ok", "message": ""},
         {"host": "edge-1", "phase": "switch", "result": "ok", "message": ""}]


def deploy(release: Any, spec: dict[str, Any], run_id: str) -> dict[str, Any]:
    code, begun = release("begin", SERVICE, "--run-id", run_id, "--cluster", stdin=spec)
    assert code == 0, begun
    code, done = release("run", SERVICE, "--run-id", run_id, "--steps", ",".join(begun["todo"]), stdin=spec)
    assert code == 0, done
    return dict(done)


def test_a_cluster_run_appends_one_line_with_every_host_s_result_when_asked(world: World, release: Any) -> None:
    world.image("v1.0.0")
    assert deploy(release, world.spec("v1.0.0"), "r1")["result"] == "deployed"
    assert world.history() == []  # kept in the run's record until the controller asks
    assert world.state()["live"]["run_id"] == "r1"  # state.json as always

    code, answer = release("record-rollout", SERVICE, "--run-id", "r1", stdin={"hosts": HOSTS})

    assert (code, answer["result"]) == (0, "deployed")
    lines = world.history()
    assert len(lines) == 1
    assert (lines[0]["run_id"], lines[0]["result"], lines[0]["version"], lines[0]["hosts"]) == (
        "r1", "deployed", "v1.0.0", HOSTS)
    assert set(contract.HISTORY_KEYS) <= set(lines[0])
    release("record-rollout", SERVICE, "--run-id", "r1", stdin={"hosts": HOSTS})
    assert len(world.history()) == 1  # asked again (a re-run of the task): once only


def test_a_failed_cluster_run_keeps_its_line_too(world: World, release: Any) -> None:
    world.image("v1.0.0")
    deploy(release, world.spec("v1.0.0"), "r1")
    release("record-rollout", SERVICE, "--run-id", "r1", stdin={"hosts": HOSTS})
    world.image("v2.0.0")
    assert release("begin", SERVICE, "--run-id", "r2", "--cluster", stdin=world.spec("v2.0.0"))[0] == 0
    release("run", SERVICE, "--run-id", "r2", "--steps", "start,health", stdin=world.spec("v2.0.0"))
    why = "notes-api: the cluster rollout stopped ...: app-2 failed in phase health: GET /health answered 500"
    assert world.finish("r2", "health", why)["result"] == "failed"
    assert [line["run_id"] for line in world.history()] == ["r1"]
    failed = [{"host": "app-1", "phase": "start", "result": "ok", "message": ""},
              {"host": "app-2", "phase": "health", "result": "failed", "message": "GET /health answered 500"}]
    code, answer = release("record-rollout", SERVICE, "--run-id", "r2", stdin={"hosts": failed})
    assert (code, answer["result"]) == (0, "failed")
    line = world.history()[-1]
    assert (line["run_id"], line["result"], line["failed_phase"], line["hosts"]) == ("r2", "failed", "health", failed)
    assert "app-2 failed in phase health" in line["message"]


def test_a_host_that_kept_no_line_records_what_its_run_knows(world: World, release: Any) -> None:
    """The first app host that answered stopped before its lock (or never began): the line comes from its record."""
    assert release("record-rollout", SERVICE, "--run-id", "r9", stdin={"hosts": HOSTS[:1]})[0] == 0
    line = world.history()[-1]
    assert (line["run_id"], line["result"], line["hosts"]) == ("r9", "failed", HOSTS[:1])


@pytest.mark.parametrize("stdin", ["", "{", {"hosts": []}, {"hosts": [{"host": "a", "result": "great"}]},
                                   {"hosts": [{"phase": "settle", "result": "ok"}]}, [1]])
def test_bad_host_results_are_refused_and_nothing_is_written(world: World, release: Any, stdin: Any) -> None:
    code, answer = release("record-rollout", SERVICE, "--run-id", "r1", stdin=stdin)
    assert code == contract.EXIT_USAGE
    assert "record-rollout" in answer["message"]
    assert world.history() == []


def test_one_vm_appends_its_line_as_always_and_unlock_lines_are_never_held(world: World, release: Any) -> None:
    world.image("v1.0.0")
    spec = world.spec("v1.0.0")
    code, begun = release("begin", SERVICE, "--run-id", "r1", stdin=spec)
    release("run", SERVICE, "--run-id", "r1", "--steps", ",".join(begun["todo"]), stdin=spec)
    assert [(line["run_id"], "hosts" in line) for line in world.history()] == [("r1", False)]
    world.image("v2.0.0")
    release("begin", SERVICE, "--run-id", "r2", "--cluster", stdin=world.spec("v2.0.0"))
    code, answer = release("unlock", SERVICE, "--force", "--reason", "test: the controller died")
    assert code == 0, answer
    assert [(line["run_id"], line["action"]) for line in world.history()] == [("r1", "deploy"), ("r2", "unlock")]


def test_a_noop_host_records_the_rollout_another_host_failed_in_its_begin(world: World, release: Any) -> None:
    """app-1 answered noop, app-2 failed its gate inside its begin (`--gate-when-ready`): app-1 was never begun again,
    so its run is a noop; the rollout's one record still says failed, naming app-2 and the phase (the Molecule run of
    2026-12-03 11:34 found a `noop` record here)."""
    world.image("v1.0.0")
    assert deploy(release, world.spec("v1.0.0"), "r1")["result"] == "deployed"
    release("record-rollout", SERVICE, "--run-id", "r1", stdin={"hosts": HOSTS})
    code, begun = release("begin", SERVICE, "--run-id", "r2", "--cluster", "--gate-when-ready",
                          stdin=world.spec("v1.0.0"))
    assert (code, begun["result"]) == (0, "noop")
    hosts = [{"host": "app-1", "phase": "begin", "result": "ok", "message": ""},
             {"host": "app-2", "phase": "health", "result": "failed", "message": "GET /health answered 500"},
             {"host": "edge-1", "phase": "", "result": "not run", "message": ""}]

    code, _ = release("record-rollout", SERVICE, "--run-id", "r2", stdin={"hosts": hosts})

    assert code == 0
    line = world.history()[-1]
    assert (line["run_id"], line["result"], line["failed_phase"]) == ("r2", "failed", "health")
    assert line["message"] == "app-2 failed in phase health: GET /health answered 500"
    assert line["hosts"] == hosts


def test_asked_again_the_run_s_line_is_written_again_with_the_final_results(world: World, release: Any) -> None:
    """The settle: app-1 appended the line beside app-2's drain, which then failed: asked `again`, the same line (its
    place, its time) now names app-2's failure; the lines around it are untouched, and the file stays 0644."""
    world.image("v1.0.0")
    deploy(release, world.spec("v1.0.0"), "r1")
    release("record-rollout", SERVICE, "--run-id", "r1", stdin={"hosts": HOSTS})
    world.image("v2.0.0")
    deploy(release, world.spec("v2.0.0"), "r2")
    release("record-rollout", SERVICE, "--run-id", "r2", stdin={"hosts": HOSTS})
    before = world.history()
    final = [HOSTS[0], {"host": "app-2", "phase": "drain", "result": "failed", "message": "docker stop timed out"},
             HOSTS[2]]

    code, answer = release("record-rollout", SERVICE, "--run-id", "r2", stdin={"hosts": final, "again": True})

    assert code == 0, answer
    after = world.history()
    assert [line["run_id"] for line in after] == ["r1", "r2"]
    assert after[0] == before[0]
    assert (after[1]["time"], after[1]["version"]) == (before[1]["time"], "v2.0.0")
    assert (after[1]["result"], after[1]["failed_phase"], after[1]["hosts"]) == ("failed", "drain", final)
    assert after[1]["message"] == "app-2 failed in phase drain: docker stop timed out"
    assert oct(os.stat(world.store().paths.history).st_mode & 0o777) == "0o644"
    # Asked again once more with every host ok: the line says so again (the controller's last word counts).
    release("record-rollout", SERVICE, "--run-id", "r2", stdin={"hosts": HOSTS, "again": True})
    assert [(line["result"], line["hosts"]) for line in world.history()] == [("deployed", HOSTS), ("deployed", HOSTS)]


def test_asked_again_before_any_line_it_appends_one(world: World, release: Any) -> None:
    """The first app host's settle call did not get to append it (it did not answer): another app host is asked."""
    world.image("v1.0.0")
    deploy(release, world.spec("v1.0.0"), "r1")
    code, _ = release("record-rollout", SERVICE, "--run-id", "r1", stdin={"hosts": HOSTS, "again": True})
    assert code == 0
    assert [(line["run_id"], line["hosts"]) for line in world.history()] == [("r1", HOSTS)]


def test_again_must_be_true_or_false(world: World, release: Any) -> None:
    world.image("v1.0.0")
    deploy(release, world.spec("v1.0.0"), "r1")
    code, answer = release("record-rollout", SERVICE, "--run-id", "r1", stdin={"hosts": HOSTS, "again": "yes"})
    assert code == contract.EXIT_USAGE
    assert "again is true or false" in answer["message"]
    assert world.history() == []


def test_the_record_names_the_backup_the_controller_gave_with_the_migration(world: World, release: Any) -> None:
    """Across hosts the backup ran on the data host (the controller's task): its file comes in the migrate call's
    release (`backup`), and the rollout's one record names it, as one VM's line names its own backup's file."""
    world.docker.add_postgres()
    world.image("v1.0.0", Behaviour(migrate_to="0001"))
    spec = world.spec("v1.0.0", migrate_command=["alembic", "upgrade", "head"], backup_db="notes_api")
    code, begun = release("begin", SERVICE, "--run-id", "r1", "--cluster", stdin=spec)
    assert code == 0 and "migrate" in begun["todo"], begun
    dump = "/srv/backups/notes_api/notes_api-20261205T000000Z.dump"
    steps = [s for s in begun["todo"] if s != "backup"]  # the controller ran the backup itself
    code, done = release("run", SERVICE, "--run-id", "r1", "--steps", ",".join(steps), stdin={**spec, "backup": dump})
    assert (code, done["result"]) == (0, "deployed"), done

    release("record-rollout", SERVICE, "--run-id", "r1", stdin={"hosts": HOSTS})

    assert [line["backup"] for line in world.history()] == [dump]
