"""Rollback across hosts (issue 12) on the provisioned cluster, through `slipway rollback --env cluster` over SSH, run
after the rollout tests (test_cluster_rollout.py leaves v2.0.0 live on green on both app hosts, v1.0.0 kept stopped on
blue): the kept release started and gated on every app host, then the edge switched, then drain and record; any
failure switches nothing (docs/topology.md, "The cluster rollout, as built"). Load runs inside the edge host against
its own listener for the whole of each rollback, and every request counts: none may fail.

- v2.0.0 -> v1.0.0 under load: 0 failed, both app hosts' state and the edge's servers on both app hosts answer
  v1.0.0, and `slipway history` shows one record of it naming each host's result; the schema revision the first
  app host read after v2.0.0's migration was recorded on both app hosts.
- `rollback --to v2.0.0`: back to v2.0.0 across hosts.
- a rollback that fails on cluster-app-2 only (its kept container renamed away, so it cannot start there): nothing
  switched anywhere, app-1's kept container stopped again, 0 failed, the result naming cluster-app-2.

The tests run in order on the edge host only (the `host` fixture runs each on every host: the others skip).
"""

from __future__ import annotations

import json
import time
from typing import Any

import cluster_run
import pytest
from scenario_tools import start_load
from test_cluster_rollout import APPS, DOMAIN, SERVICE, edge_servers, live_version, request, results, through

WORK = "/tmp/cluster-rollback-load"  # noqa: S108 - inside the edge host container


@pytest.fixture
def edge(host: Any) -> Any:
    if str(host.backend.get_hostname()) != "cluster-edge":
        pytest.skip("runs once, from the edge host")
    return host


def app(edge: Any, name: str) -> Any:
    return edge.get_host(f"docker://{name}")


def state(host: Any) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(host.check_output(f"cat /var/lib/slipway/services/{SERVICE}/state.json"))
    return found


def rollback(*args: str) -> cluster_run.Run:
    started = time.monotonic()
    run = cluster_run.slipway("rollback", "--service", SERVICE, *args, "--json")
    print(f"slipway rollback {' '.join(args)}: exit {run.returncode} in {time.monotonic() - started:.1f}s")
    return run


def under_load(edge: Any, *args: str) -> tuple[cluster_run.Run, dict[str, Any]]:
    load = start_load(edge, WORK, DOMAIN, ["/version", "/health"], 300)
    try:
        run = rollback(*args)
    finally:
        counts = load.stop()
    print(f"load during rollback {' '.join(args)}: {counts['requests']} requests, {counts['failed']} failed")
    return run, counts


def servers_answer(edge: Any, colour: str) -> dict[str, str]:
    """The version each app host's server of `colour` answers, asked directly at its private address."""
    found = {}
    for name, target in edge_servers(edge).items():
        if name.startswith(f"{SERVICE}-{colour}"):
            found[name] = str(request(edge, "GET", f"http://{target}/version")["version"])
    return found


def test_the_schema_revision_of_the_migration_is_recorded_on_every_app_host(edge: Any) -> None:
    """v2.0.0's migration ran once, on cluster-app-1, against the data host: both app hosts' state.json carry the
    revision it left (cluster-app-2 got it from the controller)."""
    lives = [state(app(edge, name))["live"] for name in APPS]
    assert [live["version"] for live in lives] == ["v2.0.0", "v2.0.0"]
    revisions = {(live.get("migration_revision"), live.get("alembic_head")) for live in lives}
    assert len(revisions) == 1, lives
    revision, head = revisions.pop()
    assert revision and head == revision, lives


def test_rollback_v2_to_v1_across_both_app_hosts_under_load_fails_no_request(edge: Any) -> None:
    before = json.loads(edge.check_output(f"slipway-proxy status {SERVICE}"))
    assert before["live"] == "green"
    run, counts = under_load(edge)
    assert run.returncode == 0, run.output[-4000:]
    assert counts["requests"] > 100 and counts["failed"] == 0, counts["errors"]
    assert sorted((r["host"], r["result"], r["version"]) for r in results(run)) == [
        (name, "deployed", "v1.0.0") for name in APPS]
    assert [live_version(app(edge, name)) for name in APPS] == ["v1.0.0", "v1.0.0"]
    for name in APPS:
        current = state(app(edge, name))
        assert (current["live"]["colour"], current["kept"]["version"]) == ("blue", "v2.0.0")
        assert current["live"]["migration_revision"], current["live"]  # kept with the release it rolled back to
    assert json.loads(edge.check_output(f"slipway-proxy status {SERVICE}"))["live"] == "blue"
    assert {through(edge, "/version")["version"] for _ in range(10)} == {"v1.0.0"}
    assert servers_answer(edge, "blue") == {f"{SERVICE}-blue.1": "v1.0.0", f"{SERVICE}-blue.2": "v1.0.0"}
    # `slipway history` shows ONE record of the rollback, naming each host's result.
    run_id = json.loads(run.stdout)["run_id"]
    history = cluster_run.slipway("history", "--service", SERVICE, "--json")
    assert history.returncode == 0, history.output[-3000:]
    (record,) = [r for r in json.loads(history.stdout)["records"] if r["run_id"] == run_id]
    assert (record["host"], record["action"], record["result"], record["version"]) == (
        "cluster-app-1", "rollback", "rolled-back", "v1.0.0"), record
    assert [(h["host"], h["phase"], h["result"]) for h in record["hosts"]] == [
        ("cluster-app-1", "settle", "ok"), ("cluster-app-2", "settle", "ok"), ("cluster-edge", "switch", "ok")]
    text = cluster_run.slipway("history", "--service", SERVICE)
    assert "cluster-app-1 settle ok; cluster-app-2 settle ok; cluster-edge switch ok" in text.output, text.output


def test_rollback_to_a_kept_release_across_hosts(edge: Any) -> None:
    run = rollback("--to", "v2.0.0")
    assert run.returncode == 0, run.output[-4000:]
    assert sorted((r["host"], r["result"], r["version"]) for r in results(run)) == [
        (name, "deployed", "v2.0.0") for name in APPS]
    assert [live_version(app(edge, name)) for name in APPS] == ["v2.0.0", "v2.0.0"]
    assert {through(edge, "/version")["version"] for _ in range(5)} == {"v2.0.0"}
    assert servers_answer(edge, "green") == {f"{SERVICE}-green.1": "v2.0.0", f"{SERVICE}-green.2": "v2.0.0"}


def test_a_rollback_failing_on_app_2_only_switches_nothing_anywhere(edge: Any) -> None:
    """cluster-app-2's kept container (v1.0.0 on blue) is renamed away for the run: its start fails there; app-1's
    kept container started and passed its gate, and is stopped again; the edge is not touched."""
    before = json.loads(edge.check_output(f"slipway-proxy status {SERVICE}"))
    app2 = app(edge, "cluster-app-2")
    app2.run_expect([0], f"docker rename {SERVICE}-blue {SERVICE}-blue-away")
    try:
        run, counts = under_load(edge)
    finally:
        app2.run_expect([0], f"docker rename {SERVICE}-blue-away {SERVICE}-blue")
    assert run.returncode == 1, run.output[-4000:]
    assert counts["requests"] > 50 and counts["failed"] == 0, counts["errors"]
    found = {r["host"]: r for r in results(run)}
    assert set(found) == set(APPS)
    for answer in found.values():
        assert answer["result"] == "failed", answer
        assert answer["failed_phase"] == "start", answer
        assert "the cluster rollback stopped" in answer["message"], answer["message"]
        assert "cluster-app-2 failed in phase start" in answer["message"], answer["message"]
    after = json.loads(edge.check_output(f"slipway-proxy status {SERVICE}"))
    assert (after["live"], after["serving"]) == (before["live"], before["serving"])
    assert {through(edge, "/version")["version"] for _ in range(5)} == {"v2.0.0"}
    for name in APPS:
        target = app(edge, name)
        assert live_version(target) == "v2.0.0"
        running = target.check_output("docker ps --format '{{.Names}}'").split()
        assert f"{SERVICE}-blue" not in running, (name, running)
        assert not target.file(f"/var/lib/slipway/services/{SERVICE}/lock.json").exists
