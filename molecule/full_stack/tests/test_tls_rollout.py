"""A rollout behind an edge proxy that serves HTTPS and redirects plain HTTP (runs after the other full_stack
tests, on the same host): the switch is confirmed through the proxy's HTTPS listener; confirmed over plain HTTP it
would only see redirects, so that rollout fails in its switch phase and the previous release keeps serving."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scenario_tools import EDGE_ADDRESS, self_signed_bundle

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks"
STATE = "/var/lib/slipway/services"
BUNDLE = "/etc/slipway-test/bundle.pem"
TLS = {"edge_proxy_certificate": BUNDLE}
DIAGNOSTIC_CONTAINERS = ["edge-proxy", "notes-api-blue", "notes-api-green"]
# GET /version through the proxy container's address: plain HTTP (argv[3] == "http") or HTTPS with SNI, unverified.
PROBE = """
import http.client, json, socket, ssl, sys
ip, host, scheme = sys.argv[1:4]
conn = http.client.HTTPConnection(ip, 443 if scheme == "https" else 80, timeout=5)
if scheme == "https":
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    conn.sock = ctx.wrap_socket(socket.create_connection((ip, 443), timeout=5), server_hostname=host)
conn.request("GET", "/version", headers={"Host": host})
resp = conn.getresponse()
print(json.dumps({"status": resp.status, "location": resp.getheader("Location"), "body": resp.read().decode()}))
"""


def through_proxy(host: Any, scheme: str) -> dict[str, Any]:
    ip = EDGE_ADDRESS
    data = base64.b64encode(PROBE.encode()).decode()
    out = host.check_output(f"echo {data} | base64 -d > /tmp/tls_probe.py && python3 /tmp/tls_probe.py {ip} "
                            f"notes.localhost {scheme}")
    return dict(json.loads(out))


def live(host: Any) -> dict[str, Any]:
    return dict(json.loads(host.check_output(f"cat {STATE}/notes-api/state.json"))["live"])


def deploy_the_other_version(
    run_playbook: Any, before: dict[str, Any], **extra: Any
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Deploy notes-api v2.0.0 (or v1.0.0 when v2.0.0 is live) with the HTTPS proxy's variables (+ extra)."""
    target = "v2.0.0" if before["version"] != "v2.0.0" else "v1.0.0"
    result = run_playbook(PLAYBOOKS / "deploy.yml", "-e", "env=local", "-e", "service=notes-api",
                          "-e", f"version={target}", extra_vars={**TLS, **extra})
    return result, target


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"rc {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"


@pytest.fixture(scope="module")
def https_proxy(host: Any, run_playbook: Any) -> Iterator[None]:
    host.run_expect([0], "mkdir -p /etc/slipway-test && chmod 0700 /etc/slipway-test")
    data = base64.b64encode(self_signed_bundle(["notes.localhost", "jotter.localhost"])[0].encode()).decode()
    host.run_expect([0], f"echo {data} | base64 -d > {BUNDLE} && chmod 0600 {BUNDLE}")
    infra = PLAYBOOKS / "infra.yml"
    result = run_playbook(infra, "-e", "env=local", "--tags", "edge_proxy", extra_vars=TLS)
    assert result.returncode == 0, explain(result)
    yield
    result = run_playbook(infra, "-e", "env=local", "--tags", "edge_proxy")
    assert result.returncode == 0, explain(result)


def test_plain_http_is_redirected_and_https_serves(host: Any, https_proxy: None) -> None:
    plain = through_proxy(host, "http")
    assert plain["status"] == 301 and plain["location"] == "https://notes.localhost/version", plain
    secure = through_proxy(host, "https")
    assert secure["status"] == 200 and json.loads(secure["body"])["version"] == live(host)["version"], secure


def test_a_switch_confirmed_over_plain_http_fails_and_the_previous_release_serves(
    host: Any, run_playbook: Any, https_proxy: None
) -> None:
    before = live(host)
    result, _ = deploy_the_other_version(run_playbook, before, app_release_proxy_tls=False)
    assert result.returncode != 0, explain(result)
    assert "rollout failed in phase switch" in result.stdout and "answered 301" in result.stdout, explain(result)
    assert live(host) == before
    assert json.loads(through_proxy(host, "https")["body"])["version"] == before["version"]
    other = "green" if before["colour"] == "blue" else "blue"
    running = host.run(f"docker inspect -f '{{{{.State.Running}}}}' notes-api-{other}")
    assert running.rc != 0 or running.stdout.strip() == "false", "the new colour was removed (kept one: stopped)"


def test_a_switch_is_confirmed_over_https_when_the_proxy_redirects(
    host: Any, run_playbook: Any, https_proxy: None
) -> None:
    result, target = deploy_the_other_version(run_playbook, live(host))
    assert result.returncode == 0, explain(result)
    assert live(host)["version"] == target
    assert json.loads(through_proxy(host, "https")["body"])["version"] == target
