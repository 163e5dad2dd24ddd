"""Monitoring across hosts (docs/topology.md, "Monitoring across hosts"): Prometheus on cluster-app-2 (the
monitoring host, not the data host) scrapes every host's node exporter, the edge's HAProxy metrics and the
PostgreSQL and Redis exporters on the data host, over cluster-private, all `up`; each other host publishes its
exporters on its private address only (not on 127.0.0.1, not on its shared network's gateway).

Runs after test_cluster_rollout.py (file order): the app hosts hold notes-api's colours by then.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

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
    out = monitoring.check_output(f'python3 -c "{GET}" http://{address}:9090/api/v1/{path} {USER}:{PASSWORD}')
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
        down = [(key, t["lastError"]) for key, t in seen.items() if key in expected() and t["health"] != "up"]
        if not missing and not down:
            break
        assert time.monotonic() < deadline, f"missing {sorted(missing)}, down {down}"
        time.sleep(5)
    print(f"targets up: {sorted(url for _, url in expected())}")
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
        private = host.run(probe, ADDRESSES[name], port)
        assert (private.rc == 0) == (name != MONITORING), (name, port, private.stderr)
        for other in ("127.0.0.1", gateway):
            assert host.run(probe, other, port).rc != 0, f"{name} answers on {other}:{port}"
