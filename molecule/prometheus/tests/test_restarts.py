"""The exporters live in Prometheus' network namespace: after Prometheus restarts or is recreated, a converge
puts them back in its current namespace; after the Docker engine restarts (a reboot) every target is up again.
Runs after the other modules (it restarts containers)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any, cast

import pytest
import scenario_tools

HERE = Path(__file__).parent
WORK = "/tmp/slipway-prom-restarts"  # noqa: S108 - inside the throwaway host container
NETWORK = "infra-shared-network"
USER, PASSWORD = "admin", "molecule-only-web-password"  # pragma: allowlist secret
EXPORTERS = ("node-exporter", "postgres-exporter", "redis-exporter")
JOBS = {"prometheus", "edge-proxy", "node", "postgres", "redis"}
DIAGNOSTIC_CONTAINERS = ("prometheus", *EXPORTERS)


def targets(host: Any) -> list[dict[str, Any]]:
    out = host.run(
        f"docker run --rm --network {NETWORK} -v {WORK}/api.py:/api.py:ro slipway/test-probe:bookworm "
        f"python3 /api.py 'http://prometheus:9090/api/v1/targets?state=active' '{USER}' '{PASSWORD}'"
    )
    if out.rc != 0:
        return []
    answer = json.loads(out.stdout)
    if answer["status"] != 200:
        return []
    return cast("list[dict[str, Any]]", json.loads(answer["body"])["data"]["activeTargets"])


def wait_all_up(host: Any, timeout: float = 90) -> None:
    """Every job's targets up, each scraped after this call began (a fresh answer, not one from before)."""
    since = time.time()
    deadline = time.monotonic() + timeout
    last: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        last = targets(host)
        fresh = [t for t in last if t["labels"]["job"] in JOBS and _scraped_after(t, since)]
        if {t["labels"]["job"] for t in fresh} >= JOBS and all(t["health"] == "up" for t in fresh):
            return
        time.sleep(3)
    pytest.fail(f"targets not all up: {[(t['scrapeUrl'], t['health'], t['lastError']) for t in last]}")


def _scraped_after(target: dict[str, Any], since: float) -> bool:
    stamp = target["lastScrape"]  # RFC 3339 with nanoseconds, e.g. 2026-12-02T17:01:02.123456789Z
    whole, _, _ = stamp.partition(".")
    seconds = time.mktime(time.strptime(whole.rstrip("Z"), "%Y-%m-%dT%H:%M:%S")) - time.timezone
    return seconds > since


def in_prometheus_namespace(host: Any) -> dict[str, bool]:
    """Whether each exporter's process is in the network namespace of Prometheus' process now."""
    def netns(name: str) -> str:
        pid = host.check_output(f"docker inspect -f '{{{{.State.Pid}}}}' {name}")
        return cast("str", host.check_output(f"readlink /proc/{pid}/ns/net"))

    prometheus = netns("prometheus")
    return {name: netns(name) == prometheus for name in EXPORTERS}


def converge(run_playbook: scenario_tools.RunPlaybook) -> int:
    # The role's own tasks only (the edge proxy and the stand-ins are not what these tests change).
    result = run_playbook(HERE.parent / "converge.yml", "--tags", "prometheus")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return scenario_tools.recap_changed(result.stdout, "slipway-prometheus")


@pytest.fixture(scope="module", autouse=True)
def helper(host: Any) -> None:
    data = base64.b64encode((HERE / "api.py").read_bytes()).decode()
    host.run_expect([0], f"mkdir -p {WORK} && echo {data} | base64 -d > {WORK}/api.py")


def test_a_converge_after_prometheus_restarted_puts_the_exporters_back_in_its_namespace(
    host: Any, run_playbook: scenario_tools.RunPlaybook
) -> None:
    host.run_expect([0], "docker restart prometheus")
    print(f"after docker restart prometheus: {in_prometheus_namespace(host)}")
    assert converge(run_playbook) > 0
    assert in_prometheus_namespace(host) == dict.fromkeys(EXPORTERS, True)
    wait_all_up(host)


def test_a_converge_after_prometheus_was_removed_recreates_the_exporters_on_the_new_one(
    host: Any, run_playbook: scenario_tools.RunPlaybook
) -> None:
    host.run_expect([0], "docker rm -f prometheus")
    converge(run_playbook)
    new_id = host.check_output("docker inspect -f '{{.Id}}' prometheus")
    for name in EXPORTERS:
        assert host.check_output(f"docker inspect -f '{{{{.HostConfig.NetworkMode}}}}' {name}") == f"container:{new_id}"
    assert in_prometheus_namespace(host) == dict.fromkeys(EXPORTERS, True)
    wait_all_up(host)


def test_a_converge_after_a_docker_engine_restart_brings_every_target_back(
    host: Any, run_playbook: scenario_tools.RunPlaybook
) -> None:
    """An engine restart without live-restore (or a reboot) starts the containers in parallel: an exporter whose
    namespace owner (Prometheus) is not up yet may fail to start and stay down (seen once in CI). The documented way
    back is a converge, which starts them in Prometheus' namespace."""
    host.run_expect([0], "systemctl restart docker")
    host.run_expect([0], "for i in $(seq 1 60); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done; exit 1")
    host.run_expect([0], "for i in $(seq 1 60); do [ \"$(docker inspect -f '{{.State.Running}}' prometheus)\" = true ] "
                         "&& exit 0; sleep 1; done; exit 1")
    converge(run_playbook)
    running = host.check_output(
        "docker ps --format '{{.Names}}' --filter name=prometheus --filter name=exporter"
    ).split()
    assert sorted(running) == sorted(["prometheus", *EXPORTERS])
    assert in_prometheus_namespace(host) == dict.fromkeys(EXPORTERS, True)
    wait_all_up(host)
