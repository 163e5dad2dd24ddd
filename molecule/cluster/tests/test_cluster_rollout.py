"""The cluster rollout (issue 12) on the provisioned cluster, through `slipway deploy --env cluster` over SSH: the
migration once on the first app host, the new colour started and gated on both app hosts, then the edge switched
(docs/rollout.md, "Across hosts"). Load runs inside the edge host against its own listener (127.0.0.1) for the
whole of each rollout, and every request counts: none may fail.

- v1.0.0 (fresh) then v2.0.0 under load: 0 failed, the edge routes v2.0.0 on both app hosts, and a note written
  through app-1's published colour is read through app-2's (one database on the data host).
- A release healthy on app-1 but failing its health gate on app-2 only (an inventory variable for cluster-app-2
  alone sets the app's FAIL_HEALTH there): nothing switched anywhere, the new colour is gone from both app hosts,
  0 failed, the result names cluster-app-2 and the phase, and the rollout's one history record (on app-1) gives
  each host's result.
- cluster-app-2 cut off (its firewall drops the controller's SSH) once it holds the run's lock: exit 3 naming it
  unreachable, app-1 cleaned up, the edge untouched; the lock it kept is released with `slipway unlock`.

The tests run in order on the edge host only (the `host` fixture runs each on every host: the others skip).
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import cluster_run
import ops_run  # scripts/ops_run.py, on sys.path through cluster_run
import pytest
import yaml
from scenario_tools import start_load

SERVICE = "notes-api"
DOMAIN = "notes.localhost"
APPS = ("cluster-app-1", "cluster-app-2")
WORK = "/tmp/cluster-rollout-load"  # noqa: S108 - inside the edge host container
DIAGNOSTIC_CONTAINERS = ("edge-proxy",)


@pytest.fixture
def edge(host: Any) -> Any:
    if str(host.backend.get_hostname()) != "cluster-edge":
        pytest.skip("runs once, from the edge host")
    return host


def app(edge: Any, name: str) -> Any:
    return edge.get_host(f"docker://{name}")


def deploy(version: str) -> cluster_run.Run:
    started = time.monotonic()
    run = cluster_run.slipway("deploy", "--service", SERVICE, "--version", version, "--json")
    print(f"slipway deploy {version}: exit {run.returncode} in {time.monotonic() - started:.1f}s")
    return run


def results(run: cluster_run.Run) -> list[dict[str, Any]]:
    answer = json.loads(run.stdout)
    found: list[dict[str, Any]] = answer.get("results") or []
    return found


def live_version(host: Any) -> str:
    state = json.loads(host.check_output(f"cat /var/lib/slipway/services/{SERVICE}/state.json"))
    return str(state["live"]["version"])


def edge_servers(edge: Any) -> dict[str, str]:
    """The edge's servers of the service: name -> address:port, from its rendered configuration."""
    config = edge.check_output("cat /etc/slipway/edge-proxy/haproxy.cfg")
    return dict(re.findall(rf"^\s*server ({SERVICE}-\w+(?:-\d+)?\.\d) (\S+)", config, flags=re.MULTILINE))


def through(edge: Any, path: str) -> dict[str, Any]:
    out = edge.check_output(f"python3 -c \"import urllib.request,sys; r=urllib.request.urlopen(urllib.request.Request("
                            f"'http://127.0.0.1{path}', headers={{'Host': '{DOMAIN}'}}), timeout=5); "
                            f"sys.stdout.write(r.read().decode())\"")
    found: dict[str, Any] = json.loads(out)
    return found


def request(edge: Any, method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """From the edge host to an app host's published colour, over the private network."""
    data = json.dumps(body) if body is not None else ""
    script = ("import json,sys,urllib.request; d=sys.argv[3].encode() or None; "
              "r=urllib.request.Request(sys.argv[2], data=d, method=sys.argv[1], "
              "headers={'Content-Type': 'application/json', 'Host': '" + DOMAIN + "'}); "
              "sys.stdout.write(urllib.request.urlopen(r, timeout=5).read().decode())")
    found: dict[str, Any] = json.loads(edge.check_output(f"python3 -c {json.dumps(script)} {method} {url} "
                                                         f"'{data}'"))
    return found


def test_v1_then_v2_under_load_fails_no_request_and_the_data_is_one(edge: Any) -> None:
    first = deploy("v1.0.0")
    assert first.returncode == 0, first.output[-4000:]
    assert through(edge, "/version")["version"] == "v1.0.0"
    load = start_load(edge, WORK, DOMAIN, ["/version", "/health"], 300)
    try:
        second = deploy("v2.0.0")
    finally:
        counts = load.stop()
    print(f"load during v1.0.0 -> v2.0.0: {counts['requests']} requests, {counts['failed']} failed")
    assert second.returncode == 0, second.output[-4000:]
    assert counts["requests"] > 100 and counts["failed"] == 0, counts["errors"]
    assert sorted((r["host"], r["result"], r["version"]) for r in results(second)) == [
        (name, "deployed", "v2.0.0") for name in APPS]
    assert [live_version(app(edge, name)) for name in APPS] == ["v2.0.0", "v2.0.0"]
    seen = {through(edge, "/version")["version"] for _ in range(10)}
    assert seen == {"v2.0.0"}
    # Both app hosts' new colour is in the edge (one server each, at its private address and published port).
    servers = edge_servers(edge)
    green = {name: target for name, target in servers.items() if name.startswith(f"{SERVICE}-green")}
    assert sorted(green) == [f"{SERVICE}-green.1", f"{SERVICE}-green.2"], servers
    assert green[f"{SERVICE}-green.1"].startswith("10.213.0.11:")
    assert green[f"{SERVICE}-green.2"].startswith("10.213.0.12:")
    # The rollout's one record (on app-1) names the dump the data host took before the migration, which is there.
    run_id = json.loads(second.stdout)["run_id"]
    (record,) = [json.loads(line) for line in app(edge, "cluster-app-1").check_output(
        f"cat /var/lib/slipway/services/{SERVICE}/history.jsonl").splitlines() if json.loads(line)["run_id"] == run_id]
    assert record["backup"].endswith(".dump"), record
    assert app(edge, "cluster-data").file(record["backup"]).is_file, record["backup"]
    # Written through app-1, read through app-2: one database, on the data host.
    text = f"cluster note {time.time()}"
    note = request(edge, "POST", f"http://{green[f'{SERVICE}-green.1']}/notes", {"title": text})
    read = request(edge, "GET", f"http://{green[f'{SERVICE}-green.2']}/notes/{note['id']}")
    assert read["title"] == text


def test_a_health_gate_failing_on_app_2_only_switches_nothing_anywhere(edge: Any) -> None:
    """cluster-app-2 alone gets FAIL_HEALTH (a host_vars file in the run's inventory): its new colour fails its gate,
    app-1's passes; the edge is not touched and both app hosts end as they were."""
    before = json.loads(edge.check_output(f"slipway-proxy status {SERVICE}"))
    host_vars = cluster_run.ops_dir() / "inventories" / cluster_run.ENV / "host_vars"
    host_vars.mkdir(exist_ok=True)
    group_vars = cluster_run.ops_dir() / "inventories" / cluster_run.ENV / "group_vars" / cluster_run.ENV / "main.yml"
    services = yaml.safe_load(group_vars.read_text(encoding="utf-8"))["slipway_services"]
    override = host_vars / "cluster-app-2.yml"
    override.write_text(yaml.safe_dump({"slipway_services": ops_run.failing_health_services(services, SERVICE)}),
                        encoding="utf-8")
    load = start_load(edge, WORK, DOMAIN, ["/version", "/health"], 300)
    try:
        run = deploy("v2.0.0")
    finally:
        counts = load.stop()
        override.unlink()
    print(f"load during the failing rollout: {counts['requests']} requests, {counts['failed']} failed")
    assert run.returncode == 1, run.output[-4000:]
    assert counts["requests"] > 50 and counts["failed"] == 0, counts["errors"]
    found = {r["host"]: r for r in results(run)}
    assert set(found) == set(APPS)
    for answer in found.values():
        assert answer["result"] == "failed"
        assert answer["failed_phase"] == "health"
        assert "cluster-app-2 failed in phase health" in answer["message"], answer["message"]
    after = json.loads(edge.check_output(f"slipway-proxy status {SERVICE}"))
    assert (after["live"], after["serving"]) == (before["live"], before["serving"])
    assert {through(edge, "/version")["version"] for _ in range(5)} == {"v2.0.0"}
    idle = "blue" if before["live"] == "green" else "green"
    for name in APPS:
        target = app(edge, name)
        assert live_version(target) == "v2.0.0"
        running = target.check_output("docker ps --format '{{.Names}}'").split()
        assert f"{SERVICE}-{idle}" not in running, running
    # One history record of the rollout, on the first app host, with each host's result (none on app-2).
    run_id = json.loads(run.stdout)["run_id"]
    # (app-2 may have no history file at all: every cluster rollout's record is on app-1.)
    lines = {name: [json.loads(line) for line in app(edge, name).check_output(
        f"cat /var/lib/slipway/services/{SERVICE}/history.jsonl 2>/dev/null || true").splitlines()] for name in APPS}
    assert [line for line in lines["cluster-app-2"] if line["run_id"] == run_id] == []
    (record,) = [line for line in lines["cluster-app-1"] if line["run_id"] == run_id]
    assert (record["result"], record["failed_phase"]) == ("failed", "health"), record
    assert "cluster-app-2 failed in phase health" in record["message"], record
    hosts = {h["host"]: h for h in record["hosts"]}
    assert (hosts["cluster-app-1"]["result"], hosts["cluster-app-2"]["result"]) == ("ok", "failed"), hosts
    assert hosts["cluster-app-2"]["phase"] == "health", hosts
    assert hosts["cluster-edge"]["result"] == "not run", hosts


def test_the_edge_still_routes_both_app_hosts_after_the_failure(edge: Any) -> None:
    """The live colour's servers on both app hosts are UP: the failure removed only the new colour."""
    status = json.loads(edge.check_output(f"slipway-proxy status {SERVICE}"))
    members = status["servers"][status["live"]]["members"]
    assert [(m["server"].rsplit(".", 1)[-1], m["status"]) for m in members] == [("1", "UP"), ("2", "UP")], members


def test_an_app_host_cut_off_mid_rollout_switches_no_edge(edge: Any) -> None:
    """cluster-app-2 stops answering SSH once it holds the run's lock (its firewall drops the controller's packets;
    its colours keep serving the edge): the deploy names it unreachable, app-1 cleans up, the edge is not touched.
    Then the rule goes and the lock it kept is released with `slipway unlock`."""
    before = json.loads(edge.check_output(f"slipway-proxy status {SERVICE}"))
    app2 = app(edge, "cluster-app-2")
    lock = f"/var/lib/slipway/services/{SERVICE}/lock.json"
    # Both ways: its begin starts and gates the new colour in the same call (`--gate-when-ready`), so with only the
    # controller's packets dropped its answer (sent before the cut's effect) could still arrive, and it would have
    # passed its gate: the edges would switch (docs/topology.md, "Which plays run").
    rules = ["INPUT -s 10.213.0.1 -p tcp --dport 22 -j DROP", "OUTPUT -d 10.213.0.1 -p tcp --sport 22 -j DROP"]
    cutter = threading.Thread(target=_cut_when_locked, args=(app2, lock, rules), daemon=True)
    cutter.start()
    try:
        run = deploy("v1.0.0")
    finally:
        cutter.join(timeout=5)
        for rule in rules:
            app2.run(f"iptables -D {rule}")
    assert run.returncode == 3, run.output[-4000:]
    assert "cluster-app-2" in run.output and "unreachable" in run.output.lower(), run.output[-4000:]
    found = {r["host"]: r for r in results(run)}
    assert found["cluster-app-1"]["result"] == "failed", found
    assert re.search(r"cluster-app-2 failed in phase \w+: did not answer", found["cluster-app-1"]["message"]), found
    after = json.loads(edge.check_output(f"slipway-proxy status {SERVICE}"))
    assert after["live"] == before["live"]
    assert {through(edge, "/version")["version"] for _ in range(5)} == {"v2.0.0"}
    assert not app(edge, "cluster-app-1").file(lock).exists
    unlocked = cluster_run.slipway("unlock", "--service", SERVICE, "--reason", "cluster test: app-2 was cut off")
    assert unlocked.returncode == 0, unlocked.output[-3000:]
    assert not app2.file(lock).exists


def _cut_when_locked(target: Any, lock: str, rules: list[str]) -> None:
    for _ in range(600):
        if target.file(lock).exists:
            target.run_expect([0], " && ".join(f"iptables -I {rule}" for rule in rules))
            return
        time.sleep(0.1)


def test_no_secret_reached_the_deploy_output(edge: Any) -> None:
    text = Path(cluster_run.run_dir(), "ops", "inventories", cluster_run.ENV, "group_vars", cluster_run.ENV,
                "main.yml").read_text(encoding="utf-8")
    secrets = re.findall(r'"(cluster-[a-z-]+-pw)"', text)
    assert secrets
    run = cluster_run.slipway("status")
    for secret in secrets:
        assert secret not in run.output
