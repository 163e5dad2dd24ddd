"""Monitoring across hosts (docs/topology.md, "Monitoring across hosts"): Prometheus on cluster-app-2 (the
monitoring host, not the data host) scrapes every host's node exporter, the edge's HAProxy metrics and the
PostgreSQL and Redis exporters on the data host and notes-api's live colour on each app host, over cluster-private,
all `up`; each other host publishes its exporters on its private address only (not on 127.0.0.1, not on its shared
network's gateway).

Scheduled jobs in a cluster (issue 15): notes-api deployed again at its live version with a `tick` job every 15 s and
a `broken` one (exit 3) in the registry (a group_vars file in the run's inventory): the cluster rollout is a noop
everywhere and the timers follow it onto the job host (cluster-app-1) only; each tick leaves exactly one record
across the two app hosts; the failing run shows in `slipway status` (exit 4, naming it) and as its metric through
Prometheus on cluster-app-2 (scraped from cluster-app-1's node exporter). The registry without the jobs is deployed
again at the end: the units are removed.

Runs after test_cluster_rollout.py (file order): the app hosts hold notes-api's colours by then.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import cluster_run
import pytest
import yaml
from scenario_tools import counted_run, tick_of

MONITORING = "cluster-app-2"
ADDRESSES = {"cluster-edge": "10.213.0.10", "cluster-app-1": "10.213.0.11", "cluster-app-2": "10.213.0.12",
             "cluster-data": "10.213.0.13"}
USER, PASSWORD = "admin", "cluster-prometheus-web-pw"  # pragma: allowlist secret (group_vars/cluster, test only)
NODE_PORT, POSTGRES_PORT, REDIS_PORT, STATS_PORT = 9100, 9187, 9121, 8404
DIAGNOSTIC_CONTAINERS = ("prometheus",)
GET = ("import base64,json,sys,urllib.request as u; r=u.Request(sys.argv[1]); "
       "r.add_header('Authorization','Basic '+base64.b64encode(sys.argv[2].encode()).decode()); "
       "print(u.urlopen(r,timeout=10).read().decode())")


@pytest.fixture
def monitoring(host: Any) -> Any:
    if str(host.backend.get_hostname()) != MONITORING:
        pytest.skip("runs once, on the monitoring host")
    return host


def api(monitoring: Any, path: str) -> dict[str, Any]:
    """Prometheus' API from the monitoring host, at the container's address on the shared network (not published)."""
    address = monitoring.check_output(
        "docker inspect -f '{{(index .NetworkSettings.Networks \"infra-shared-network\").IPAddress}}' prometheus")
    out = monitoring.check_output(f"python3 -c \"{GET}\" 'http://{address}:9090/api/v1/{path}' {USER}:{PASSWORD}")
    found: dict[str, Any] = json.loads(out)
    return found


def expected() -> set[tuple[str, str]]:
    """(job, scrape URL) of every target: the monitoring host's own exporters on Prometheus' 127.0.0.1."""
    found = {("node", f"http://127.0.0.1:{NODE_PORT}/metrics")}
    found |= {("node", f"http://{address}:{NODE_PORT}/metrics")
              for name, address in ADDRESSES.items() if name != MONITORING}
    found.add(("edge-proxy", f"http://{ADDRESSES['cluster-edge']}:{STATS_PORT}/metrics"))
    found.add(("postgres", f"http://{ADDRESSES['cluster-data']}:{POSTGRES_PORT}/metrics"))
    found.add(("redis", f"http://{ADDRESSES['cluster-data']}:{REDIS_PORT}/metrics"))
    return found


def test_prometheus_scrapes_every_host_over_the_private_network(monitoring: Any) -> None:
    deadline = time.monotonic() + 120
    while True:
        targets = api(monitoring, "targets?state=active")["data"]["activeTargets"]
        seen = {(t["labels"]["job"], t["scrapeUrl"]): t for t in targets}
        missing = expected() - set(seen)
        down = [(key, t["lastError"]) for key, t in seen.items() if t["health"] != "up"]
        if not missing and not down and sum(job == "services" for job, _ in seen) == 2:
            break
        assert time.monotonic() < deadline, f"missing {sorted(missing)}, down {down}"
        time.sleep(5)
    print(f"targets up: {sorted(url for _, url in expected())}")
    # notes-api's live colour on each app host (one replica each), at its published port on the host's private
    # address: the deploy's last play named them on the monitoring host (targets/notes-api.<host>.json).
    services = [t for t in targets if t["labels"]["job"] == "services"]
    assert sorted((t["labels"]["host"], t["scrapeUrl"].split(":")[1].strip("/")) for t in services) == [
        ("cluster-app-1", ADDRESSES["cluster-app-1"]), ("cluster-app-2", ADDRESSES["cluster-app-2"])], services
    assert all(t["health"] == "up" and t["labels"]["service"] == "notes-api" for t in services), services
    # The node series of each host carries its inventory name (one instance per host).
    instances = {r["metric"]["instance"] for r in api(monitoring, "query?query=node_uname_info")["data"]["result"]}
    assert instances == set(ADDRESSES), instances


def test_exporters_are_published_on_the_private_address_only(host: Any) -> None:
    """Each other host answers on its private address and on nothing else: not on its loopback, not on its shared
    network's gateway (the host's address on its Docker bridge); the monitoring host publishes none."""
    name = str(host.backend.get_hostname())
    ports = [NODE_PORT] + ([POSTGRES_PORT, REDIS_PORT] if name == "cluster-data" else [])
    gateway = host.check_output(
        "docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' infra-shared-network")
    probe = "python3 -c \"import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 3)\" %s %s"
    for port in ports:
        private = host.run(probe, ADDRESSES[name], str(port))
        assert (private.rc == 0) == (name != MONITORING), (name, port, private.stderr)
        for other in ("127.0.0.1", gateway):
            assert host.run(probe, other, str(port)).rc != 0, f"{name} answers on {other}:{port}"


# ------------------------------------------------------------------------------------------------ scheduled jobs
SERVICE = "notes-api"
JOB_HOST, OTHER_APP = "cluster-app-1", "cluster-app-2"
STATE = f"/var/lib/slipway/services/{SERVICE}"
TICK = 15
JOBS = {
    "tick": {"schedule": "*:*:0/15", "timeout": 30, "command": ["python", "-c", "print('tick')"]},
    "broken": {"schedule": "*-*-01 04:00:00", "command": ["python", "-c", "import sys; sys.exit(3)"]},
}


def runs(app: Any, job: str) -> list[dict[str, Any]]:
    out = app.run(f"cat {STATE}/jobs/{job}.json")
    return list(json.loads(out.stdout)["runs"]) if out.rc == 0 else []


def deploy_live(app: Any) -> None:
    version = json.loads(app.check_output(f"cat {STATE}/state.json"))["live"]["version"]
    run = cluster_run.slipway("deploy", "--service", SERVICE, "--version", version, "--json")
    assert run.returncode == 0, run.output[-4000:]


@pytest.fixture(scope="module")
def ticking(host: Any) -> Iterator[float]:
    """The jobs in the registry, deployed at the live version; yields the job host's time when the timers were in
    place. Afterwards the registry without them, deployed again: every job unit is gone from both app hosts."""
    if str(host.backend.get_hostname()) != MONITORING:
        pytest.skip("runs once, from the monitoring host")
    group_vars = cluster_run.ops_dir() / "inventories" / cluster_run.ENV / "group_vars" / cluster_run.ENV
    services = yaml.safe_load((group_vars / "main.yml").read_text(encoding="utf-8"))["slipway_services"]
    services[SERVICE]["jobs"] = JOBS
    override = group_vars / "zz_jobs.yml"  # read after main.yml: its slipway_services wins
    override.write_text(yaml.safe_dump({"slipway_services": services}), encoding="utf-8")
    app = host.get_host(f"docker://{JOB_HOST}")
    try:
        deploy_live(app)
        yield float(app.check_output("date +%s.%N"))
    finally:
        override.unlink()
    deploy_live(app)
    for name in (JOB_HOST, OTHER_APP):
        units = host.get_host(f"docker://{name}").run(f"ls /etc/systemd/system/ | grep -c slipway-job-{SERVICE}-")
        assert units.stdout.strip() == "0", f"job units left on {name}"


def test_the_timers_run_on_the_job_host_only_and_each_tick_runs_once(host: Any, ticking: float) -> None:
    app1, app2 = host.get_host(f"docker://{JOB_HOST}"), host.get_host(f"docker://{OTHER_APP}")
    for job in JOBS:
        timer = f"slipway-job-{SERVICE}-{job}.timer"
        assert app1.service(timer).is_running and app1.service(timer).is_enabled, timer
        assert not app2.file(f"/etc/systemd/system/{timer}").exists, f"{timer} on {OTHER_APP}"
    start = (int(ticking) // TICK + 1) * TICK  # the first whole tick after the timers were in place
    end = start + 2 * TICK
    expected = list(range(start, end + TICK, TICK))

    def window() -> dict[str, list[dict[str, Any]]]:  # each app host's records of the ticks counted
        return {name: [r for r in runs(app, "tick") if counted_run(r, start, end, TICK)]
                for name, app in ((JOB_HOST, app1), (OTHER_APP, app2))}

    def ticks_of(records: dict[str, list[dict[str, Any]]]) -> list[int]:
        return sorted(tick_of(r["started"], TICK) for found in records.values() for r in found)

    while float(app1.check_output("date +%s.%N")) < end + 10:
        time.sleep(3)
    # A run's record is written when its container has ended: on a busy host it may come later (a wait, not a bound).
    deadline = time.monotonic() + 60
    while ticks_of(window()) != expected and time.monotonic() < deadline:
        time.sleep(2)
    records = window()
    print("tick runs:", {name: [(r["started_at"], r["result"]) for r in found] for name, found in records.items()})
    assert ticks_of(records) == expected, ticks_of(records)  # one record per tick across both app hosts
    assert records[OTHER_APP] == []
    assert all(r["result"] == "ok" and r["exit_code"] == 0 for r in records[JOB_HOST]), records


def test_a_failing_run_shows_in_status_and_through_prometheus(host: Any, ticking: float) -> None:
    app1 = host.get_host(f"docker://{JOB_HOST}")
    before = len(runs(app1, "broken"))
    app1.run_expect([0], f"systemctl start slipway-job-{SERVICE}-broken.service")
    deadline = time.monotonic() + 60
    while len(runs(app1, "broken")) == before and time.monotonic() < deadline:
        time.sleep(1)
    last = runs(app1, "broken")[0]
    assert (last["result"], last["exit_code"]) == ("failed", 3), last

    status = cluster_run.slipway("status", "--service", SERVICE)
    assert status.returncode == 4, status.output[-3000:]
    assert "broken" in status.output and "FAILING" in status.output, status.output[-3000:]

    # Scraped from the job host's node exporter (textfile collector) by Prometheus on the monitoring host; the
    # metric's own `job` label becomes `exported_job` beside the scrape job's.
    query = f'slipway_job_last_exit_code{{exported_job="broken",service="{SERVICE}"}}'
    deadline = time.monotonic() + 60
    while True:
        found = api(host, "query?query=" + urllib.parse.quote(query))["data"]["result"]
        if found and found[0]["value"][1] == "3":
            break
        assert time.monotonic() < deadline, found
        time.sleep(5)
    assert [r["metric"]["instance"] for r in found] == [JOB_HOST], found
