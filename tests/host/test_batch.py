"""`slipway-release batch` (src/slipway_core/host/batch.py): several of the program's commands in one call, each
with its own stdin, in order, stopping at the first that fails; a bad batch runs nothing. Fake engine and edge."""

from __future__ import annotations

import json
from typing import Any

import pytest
from world import SERVICE, World

from slipway_core import contract

HOSTS = [{"host": "app-1", "phase": "settle", "result": "ok", "message": ""},
         {"host": "edge-1", "phase": "switch", "result": "ok", "message": ""}]


def cluster_deploy(release: Any, world: World, run_id: str) -> None:
    world.image("v1.0.0")
    spec = world.spec("v1.0.0")
    code, begun = release("begin", SERVICE, "--run-id", run_id, "--cluster", stdin=spec)
    assert code == 0, begun
    code, done = release("run", SERVICE, "--run-id", run_id, "--steps", ",".join(begun["todo"]), stdin=spec)
    assert (code, done["result"]) == (0, "deployed")


def call(argv: list[str], stdin: Any = None) -> dict[str, Any]:
    return {"argv": argv, **({"stdin": json.dumps(stdin)} if stdin is not None else {})}


def test_each_call_runs_in_order_with_its_own_stdin_and_answers_apart(world: World, release: Any) -> None:
    cluster_deploy(release, world, "r1")
    assert world.history() == []
    code, answer = release("batch", stdin={"calls": [
        call(["--root", world.root, "status", SERVICE]),
        call(["--root", world.root, "record-rollout", SERVICE, "--run-id", "r1"], {"hosts": HOSTS}),
    ]})
    assert code == 0
    status, recorded = answer["results"]
    assert (status["rc"], recorded["rc"]) == (0, 0)
    assert json.loads(status["stdout"])["status"][0]["version"] == "v1.0.0"
    assert json.loads(recorded["stdout"])["result"] == "deployed"
    assert [line["hosts"] for line in world.history()] == [HOSTS]  # the second call read its own stdin


def test_the_first_call_that_fails_ends_the_batch_with_its_exit_status(world: World, release: Any) -> None:
    cluster_deploy(release, world, "r1")
    code, answer = release("batch", stdin={"calls": [
        call(["--root", world.root, "record-rollout", SERVICE, "--run-id", "r1"], {"hosts": []}),  # refused: exit 2
        call(["--root", world.root, "record-rollout", SERVICE, "--run-id", "r1"], {"hosts": HOSTS}),
    ]})
    assert code == contract.EXIT_USAGE
    assert [r["rc"] for r in answer["results"]] == [contract.EXIT_USAGE]  # the second did not run
    assert "no hosts" in answer["results"][0]["stderr"]
    assert world.history() == []


def test_a_usage_error_inside_a_call_is_its_exit_status_not_the_batch_s_end(world: World, release: Any) -> None:
    code, answer = release("batch", stdin={"calls": [call(["--root", world.root, "no-such-command"])]})
    assert code == contract.EXIT_USAGE
    assert answer["results"][0]["rc"] == contract.EXIT_USAGE and "invalid choice" in answer["results"][0]["stderr"]


@pytest.mark.parametrize(("stdin", "problem"), [
    ("not json", "stdin is not JSON"),
    ({}, "no calls"),
    ({"calls": []}, "no calls"),
    ({"calls": [{"argv": "status"}]}, "call 1 has no argv"),
    ({"calls": [{"argv": ["status"]}, {"argv": ["status", 3]}]}, "call 2 has no argv"),
    ({"calls": [{"argv": ["batch"]}]}, "call 1 is a batch itself"),
    ({"calls": [{"argv": ["status"], "stdin": {"hosts": []}}]}, "call 1's stdin is not text"),
])
def test_a_bad_batch_runs_nothing_and_names_the_problem(world: World, release: Any, stdin: Any, problem: str) -> None:
    cluster_deploy(release, world, "r1")
    before = world.history()
    code, answer = release("batch", stdin=stdin)
    assert code == contract.EXIT_USAGE
    assert answer["results"] == [] and problem in answer["error"]
    assert world.history() == before


def test_keep_going_runs_every_call_and_exits_with_the_first_failure_s_status(world: World, release: Any) -> None:
    """The cluster's settle: a call that fails (here a refused record) does not keep the ones after it from running."""
    cluster_deploy(release, world, "r1")
    code, answer = release("batch", stdin={"keep_going": True, "calls": [
        call(["--root", world.root, "record-rollout", SERVICE, "--run-id", "r1"], {"hosts": []}),  # refused: exit 2
        call(["--root", world.root, "no-such-command"]),  # exit 2 as well: the first failure's status is the batch's
        call(["--root", world.root, "record-rollout", SERVICE, "--run-id", "r1"], {"hosts": HOSTS}),
    ]})
    assert code == contract.EXIT_USAGE
    assert [r["rc"] for r in answer["results"]] == [contract.EXIT_USAGE, contract.EXIT_USAGE, 0]
    assert [line["hosts"] for line in world.history()] == [HOSTS]  # the last call ran


def test_keep_going_must_be_true_or_false(world: World, release: Any) -> None:
    code, answer = release("batch", stdin={"keep_going": "yes", "calls": [call(["--root", world.root, "status"])]})
    assert code == contract.EXIT_USAGE
    assert answer["results"] == [] and "keep_going is true or false" in answer["error"]
