"""Behaviour of the prometheus role: every target up through the authenticated API, 401 without, rules
loaded, service targets picked up from file_sd without a restart, nothing published."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

HERE = Path(__file__).parent
WORK = "/tmp/slipway-prom"  # noqa: S108 - inside the throwaway host container
NETWORK = "infra-shared-network"
USER, PASSWORD = "admin", "molecule-only-web-password"  # pragma: allowlist secret
API = "http://prometheus:9090/api/v1"
TARGETS = "/etc/slipway/prometheus/targets/notes-api.json"


def api(host: Any, path: str, auth: tuple[str, str] | None = (USER, PASSWORD)) -> dict[str, Any]:
    creds = f" '{auth[0]}' '{auth[1]}'" if auth else ""
    out = host.check_output(
        f"docker run --rm --network {NETWORK} -v {WORK}/api.py:/api.py:ro slipway/test-probe:bookworm "
        f"python3 /api.py '{API}/{path}'{creds}"
    )
    return cast("dict[str, Any]", json.loads(out))


def wait_all_up(host: Any, jobs: set[str], timeout: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        answer = api(host, "targets?state=active")
        targets = json.loads(answer["body"])["data"]["activeTargets"] if answer["status"] == 200 else []
        seen = {t["labels"]["job"] for t in targets}
        if jobs <= seen and all(t["health"] == "up" for t in targets):
            return targets
        if time.monotonic() > deadline:
            logs = host.run("docker logs --tail 20 prometheus 2>&1").stdout
            pytest.fail(
                f"targets not all up: {[(t['scrapeUrl'], t['health'], t['lastError']) for t in targets]}\n{logs}"
            )
        time.sleep(3)


@pytest.fixture(scope="module", autouse=True)
def helper(host: Any) -> Iterator[None]:
    data = base64.b64encode((HERE / "api.py").read_bytes()).decode()
    host.run_expect([0], f"mkdir -p {WORK} && echo {data} | base64 -d > {WORK}/api.py")
    host.run_expect([0], f"echo '[]' > {TARGETS}")  # as the role leaves it: no live colour yet
    yield
    host.run("docker rm -f notes-api-blue")


def test_every_target_is_up_with_credentials(host: Any) -> None:
    targets = wait_all_up(host, {"prometheus", "edge-proxy", "node", "postgres", "redis"})
    print(f"targets up: {sorted(t['scrapeUrl'] for t in targets)}")


def test_exporters_reach_postgres_and_redis(host: Any) -> None:
    for query in ("pg_up", "redis_up"):
        body = json.loads(api(host, f"query?query={query}")["body"])
        values = [r["value"][1] for r in body["data"]["result"]]
        assert values == ["1"], (query, body)


def test_without_credentials_the_api_answers_401(host: Any) -> None:
    assert api(host, "targets", auth=None)["status"] == 401
    assert api(host, "targets", auth=(USER, "wrong-password"))["status"] == 401
    assert api(host, "status/config", auth=None)["status"] == 401


def test_web_config_holds_a_bcrypt_hash_only(host: Any) -> None:
    web = host.file("/etc/slipway/prometheus/web.yml")
    assert "$2b$" in web.content_string
    assert PASSWORD not in web.content_string
    # Secret-bearing (the hash can be attacked offline): Prometheus' uid only, no group.
    assert (web.uid, web.gid, web.mode) == (65534, 0, 0o400)


def test_alert_rules_are_loaded(host: Any) -> None:
    body = json.loads(api(host, "rules")["body"])
    names = {rule["name"] for group in body["data"]["groups"] for rule in group["rules"]}
    assert {"TargetDown", "EdgeProxyHigh5xxRatio", "PostgresDown", "RedisDown", "DiskFilling"} <= names


def test_service_targets_come_from_file_sd_without_a_restart(host: Any) -> None:
    started = host.check_output("docker inspect -f '{{.State.StartedAt}}' prometheus")
    # A stand-in service colour that serves /metrics.
    host.run("docker rm -f notes-api-blue")
    host.run_expect(
        [0],
        f"docker run -d --name notes-api-blue --network {NETWORK} slipway/test-probe:bookworm "
        'sh -c \'mkdir -p /tmp/m && echo "notes_up 1" > /tmp/m/metrics && cd /tmp/m && '
        "exec python3 -m http.server 8000'",
    )
    targets = [{"targets": ["notes-api-blue:8000"], "labels": {"service": "notes-api", "colour": "blue"}}]
    data = base64.b64encode(json.dumps(targets).encode()).decode()
    host.run_expect([0], f"echo {data} | base64 -d > {TARGETS}.tmp && mv {TARGETS}.tmp {TARGETS}")
    found = wait_all_up(host, {"services"})
    service = [t for t in found if t["labels"]["job"] == "services"]
    assert [(t["labels"]["service"], t["labels"]["colour"]) for t in service] == [("notes-api", "blue")]
    assert host.check_output("docker inspect -f '{{.State.StartedAt}}' prometheus") == started


def test_nothing_is_published_and_only_the_edge_uses_the_host_s_network(host: Any) -> None:
    for line in host.check_output("docker ps --format '{{.Names}}|{{.Ports}}|{{.Networks}}'").splitlines():
        name, ports, networks = line.split("|", 2)
        assert not [p for p in ports.split(", ") if "->" in p], line
        assert (networks == "host") == (name == "edge-proxy"), line
