"""Behaviour of the edge proxy: Host routing, 404, zero-loss colour switches and reloads, config rejection."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from scenario_tools import RunPlaybook, self_signed_bundle

HERE = Path(__file__).parent
WORK = "/tmp/slipway-ep"  # noqa: S108 - inside the throwaway host container
NETWORK = "infra-shared-network"
PROXY = "/usr/local/sbin/slipway-proxy"
CONFIG = "/etc/slipway/edge-proxy/haproxy.cfg"
# Test backends: notes-api has both colours, shop-web only blue (a missing colour is simply down).
BACKENDS = [("notes-api", "blue", 8000), ("notes-api", "green", 8000), ("shop-web", "blue", 8080)]

PROBE = """
import http.client, json, sys, time
start = time.monotonic()
conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=5)
headers = {"Host": sys.argv[1]} if sys.argv[1] else {}
conn.putrequest("GET", sys.argv[2], skip_host=True)
for k, v in headers.items():
    conn.putheader(k, v)
conn.endheaders()
resp = conn.getresponse()
body = resp.read().decode()
print(json.dumps({"status": resp.status, "headers": dict(resp.getheaders()), "body": body,
                  "seconds": time.monotonic() - start}))
"""

# GET through the proxy: HTTPS on 127.0.0.1:443 with SNI = the Host, verified against the test CA in argv[3].
TLS_PROBE = """
import http.client, json, socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 443), timeout=5), server_hostname=sys.argv[1])
conn = http.client.HTTPConnection("127.0.0.1", 443, timeout=5)
conn.sock = sock
conn.request("GET", sys.argv[2], headers={"Host": sys.argv[1]})
resp = conn.getresponse()
print(json.dumps({"status": resp.status, "headers": {k.lower(): v for k, v in resp.getheaders()},
                  "body": resp.read().decode(), "tls": sock.version()}))
"""


def put(host: Any, path: str, content: str) -> None:
    data = base64.b64encode(content.encode()).decode()
    host.run_expect([0], f"mkdir -p {WORK} && echo {data} | base64 -d > {path}")


def get(host: Any, hostname: str, path: str = "/") -> dict[str, Any]:
    out = host.run_expect([0], f"python3 {WORK}/probe.py '{hostname}' '{path}'")
    return cast("dict[str, Any]", json.loads(out.stdout))


def proxy(host: Any, *args: str, expect: tuple[int, ...] = (0,)) -> str:
    result = host.run(" ".join([PROXY, *args]))
    assert result.rc in expect, f"slipway-proxy {' '.join(args)}: rc {result.rc}\n{result.stdout}{result.stderr}"
    return cast(str, result.stdout)


def wait_serving(host: Any, service: str, colour: str) -> None:
    check = f"import json,sys; s=json.load(sys.stdin); sys.exit(0 if '{colour}' in s['serving'] else 1)"
    result = host.run(
        f'for i in $(seq 60); do {PROXY} status {service} | python3 -c "{check}" && exit 0; sleep 0.5; done; exit 1'
    )
    if result.rc != 0:
        logs = host.run("docker logs --tail 30 edge-proxy 2>&1").stdout
        pytest.fail(f"{service}-{colour} never came up:\n{proxy(host, 'status', service)}\n{logs}")


@pytest.fixture(scope="module", autouse=True)
def backends(host: Any) -> Iterator[None]:
    put(host, f"{WORK}/backend.py", (HERE / "backend.py").read_text())
    put(host, f"{WORK}/load_client.py", (HERE / "load_client.py").read_text())
    put(host, f"{WORK}/probe.py", PROBE)
    put(host, f"{WORK}/ws_client.py", (HERE / "ws_client.py").read_text())
    put(host, f"{WORK}/tls_probe.py", TLS_PROBE)
    for service, colour, port in BACKENDS:
        name = f"{service}-{colour}"
        host.run(f"docker rm -f {name}")
        host.run_expect(
            [0],
            f"docker run -d --name {name} --network {NETWORK} -v {WORK}/backend.py:/backend.py:ro "
            f"slipway/test-probe:bookworm python3 /backend.py {service} {colour} {port}",
        )
    wait_serving(host, "notes-api", "blue")
    wait_serving(host, "shop-web", "blue")
    yield
    for service, colour, _ in BACKENDS:
        host.run(f"docker rm -f {service}-{colour}")


def test_routes_by_host_header(host: Any) -> None:
    assert get(host, "notes.localhost", "/x")["body"] == "notes-api blue /x\n"
    assert get(host, "shop.localhost:80", "/y")["body"] == "shop-web blue /y\n"
    assert get(host, "NOTES.localhost")["body"].startswith("notes-api blue")


def test_unknown_host_gets_a_fast_404(host: Any) -> None:
    for hostname in ("unknown.localhost", "notes.localhost.evil.example", ""):
        answer = get(host, hostname)
        assert answer["status"] == 404, answer
        assert answer["seconds"] < 0.5, answer
        assert "notes-api" not in answer["body"] and "shop-web" not in answer["body"]


def test_hides_versions_and_adds_security_headers(host: Any) -> None:
    headers = {k.lower(): v for k, v in get(host, "notes.localhost")["headers"].items()}
    assert "server" not in headers
    assert "x-powered-by" not in headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "SAMEORIGIN"


def test_missing_colour_is_down_not_an_error(host: Any) -> None:
    status = json.loads(proxy(host, "status", "shop-web"))
    assert status["live"] == "blue"
    assert status["serving"] == ["blue"]
    assert status["servers"]["green"]["sessions"] == 0
    # Switching to a colour that does not run fails and leaves the live colour serving.
    proxy(host, "switch", "shop-web", "green", "--timeout", "3", expect=(1,))
    assert proxy(host, "live", "shop-web").strip() == "blue"
    assert get(host, "shop.localhost")["body"].startswith("shop-web blue")


def test_switch_to_an_unhealthy_colour_is_refused(host: Any) -> None:
    # A running container that does not answer its health check: never gets traffic, the live colour stays.
    host.run("docker rm -f shop-web-green")
    host.run_expect(
        [0], f"docker run -d --name shop-web-green --network {NETWORK} slipway/test-probe:bookworm sleep 300"
    )
    try:
        refused = host.run(f"{PROXY} switch shop-web green --timeout 5")
        assert refused.rc == 1 and "did not pass its health checks" in refused.stderr, refused.stderr
        status = json.loads(proxy(host, "status", "shop-web"))
        assert status["live"] == "blue" and status["serving"] == ["blue"], status
        assert status["servers"]["green"]["total_sessions"] == 0, status
        assert get(host, "shop.localhost")["body"].startswith("shop-web blue")
    finally:
        host.run("docker rm -f shop-web-green")


def test_prepare_checks_a_new_colour_without_traffic_then_switch_uses_it(host: Any) -> None:
    # The rollout's order: start the idle colour, `prepare` (fresh checks, no traffic), its own health gate, then
    # `switch --prepared`, which need not restart the checks.
    refused = host.run(f"{PROXY} prepare shop-web blue")
    assert refused.rc == 1 and "is the live colour" in refused.stderr, refused.stderr
    assert get(host, "shop.localhost")["body"].startswith("shop-web blue")
    host.run("docker rm -f shop-web-green")
    host.run_expect(
        [0],
        f"docker run -d --name shop-web-green --network {NETWORK} -v {WORK}/backend.py:/backend.py:ro "
        "slipway/test-probe:bookworm python3 /backend.py shop-web green 8080",
    )
    try:
        prepared = json.loads(proxy(host, "prepare", "shop-web", "green"))
        assert "forced-drain" in prepared["servers"]["green"]["admin_flags"], prepared
        check = "import json,sys; sys.exit(0 if json.load(sys.stdin)['servers']['green']['status'] == 'DRAIN' else 1)"
        healthy = host.run(
            f'for i in $(seq 40); do {PROXY} status shop-web | python3 -c "{check}" && exit 0; sleep 0.25; done; exit 1'
        )
        assert healthy.rc == 0, proxy(host, "status", "shop-web")
        for _ in range(5):
            assert get(host, "shop.localhost")["body"].startswith("shop-web blue")
        assert json.loads(proxy(host, "status", "shop-web"))["servers"]["green"]["total_sessions"] == 0
        switched = json.loads(proxy(host, "switch", "shop-web", "green", "--timeout", "5", "--prepared"))
        assert switched["live"] == "green" and switched["serving"] == ["green"], switched
        assert get(host, "shop.localhost")["body"].startswith("shop-web green")
    finally:
        proxy(host, "switch", "shop-web", "blue", "--timeout", "15")
        host.run("docker rm -f shop-web-green")
    assert get(host, "shop.localhost")["body"].startswith("shop-web blue")


def test_switch_marks_up_a_colour_the_caller_verified_at_the_same_address(host: Any) -> None:
    # The rollout's health gate checks the new container itself; `--verified-address` names where. At that
    # address the proxy need not wait for `rise` fresh checks of its own (2 x 250 ms at least); at any other it does.
    host.run("docker rm -f shop-web-green")
    host.run_expect(
        [0],
        f"docker run -d --name shop-web-green --network {NETWORK} -v {WORK}/backend.py:/backend.py:ro "
        "slipway/test-probe:bookworm python3 /backend.py shop-web green 8080",
    )
    template = '{{(index .NetworkSettings.Networks "' + NETWORK + '").IPAddress}}'
    ip = host.check_output(f"docker inspect -f '{template}' shop-web-green").strip()
    check = f"import json,sys; sys.exit(0 if json.load(sys.stdin)['servers']['green']['address'] == '{ip}' else 1)"
    try:
        resolved = host.run(
            f'for i in $(seq 40); do {PROXY} status shop-web | python3 -c "{check}" && exit 0; sleep 0.25; done; exit 1'
        )
        assert resolved.rc == 0, proxy(host, "status", "shop-web")
        proxy(host, "prepare", "shop-web", "green")  # fresh checks: down until `rise` of them pass
        elsewhere = host.run(f"{PROXY} switch shop-web green --timeout 0.2 --prepared --verified-address 10.255.0.1")
        assert elsewhere.rc == 1 and "did not pass its health checks" in elsewhere.stderr, elsewhere.stderr
        assert get(host, "shop.localhost")["body"].startswith("shop-web blue")
        proxy(host, "prepare", "shop-web", "green")
        switched = json.loads(
            proxy(host, "switch", "shop-web", "green", "--timeout", "0.2", "--prepared", "--verified-address", ip)
        )
        assert switched["live"] == "green" and switched["serving"] == ["green"], switched
        for _ in range(5):
            assert get(host, "shop.localhost")["body"].startswith("shop-web green")
    finally:
        proxy(host, "switch", "shop-web", "blue", "--timeout", "15")
        host.run("docker rm -f shop-web-green")
    assert get(host, "shop.localhost")["body"].startswith("shop-web blue")


def test_websocket_upgrade_is_tunnelled_to_the_live_colour(host: Any) -> None:
    live = proxy(host, "live", "notes-api").strip()
    out = json.loads(host.check_output(f"python3 {WORK}/ws_client.py notes.localhost hello again"))
    assert out["status_line"].startswith("HTTP/1.1 101"), out
    assert out["accept_ok"], out
    # Two messages 2 s apart on one upgraded connection, then a clean close.
    assert out["replies"] == [f"notes-api {live}: hello", f"notes-api {live}: again"], out
    assert out["closed"], out


def test_only_the_proxy_publishes_ports(host: Any) -> None:
    published: dict[str, list[str]] = {}
    for line in host.check_output("docker ps --format '{{.Names}}|{{.Ports}}'").splitlines():
        name, ports = line.split("|", 1)
        published[name] = [p for p in ports.split(", ") if "->" in p]
    assert published.pop("edge-proxy") == ["0.0.0.0:80->80/tcp"]
    assert all(not ports for ports in published.values()), published
    # The exporter/stats port is not published on the host.
    assert host.run("python3 -c \"import socket; socket.create_connection(('127.0.0.1', 8404), 2)\"").rc != 0


# GET http://edge-proxy:8404<path> from a container on the shared network (where every app container is), with
# basic auth when a user:password is given; prints the status, then the body.
STATS_GET = """
import base64, sys, urllib.error, urllib.request
req = urllib.request.Request("http://edge-proxy:8404" + sys.argv[1])
if len(sys.argv) > 2:
    req.add_header("Authorization", "Basic " + base64.b64encode(sys.argv[2].encode()).decode())
try:
    resp = urllib.request.urlopen(req, timeout=5)
    print(resp.status); print(resp.read().decode())
except urllib.error.HTTPError as err:
    print(err.code)
"""


def stats_get(host: Any, path: str, credentials: str | None = None) -> tuple[int, str]:
    put(host, f"{WORK}/stats_get.py", STATS_GET)
    args = f"'{path}'" + (f" '{credentials}'" if credentials else "")
    out = host.check_output(
        f"docker run --rm --network {NETWORK} -v {WORK}/stats_get.py:/s.py:ro slipway/test-probe:bookworm "
        f"python3 /s.py {args}"
    )
    status, _, body = out.partition("\n")
    return int(status), body


def test_stats_and_metrics_answer_only_the_stats_user(host: Any) -> None:
    for path in ("/metrics", "/stats"):
        assert stats_get(host, path)[0] == 401
        assert stats_get(host, path, "prometheus:not-the-password")[0] == 401  # pragma: allowlist secret
        assert stats_get(host, path, "admin:molecule-only-edge-stats-pw")[0] == 401  # pragma: allowlist secret
    status, metrics = stats_get(host, "/metrics", "prometheus:molecule-only-edge-stats-pw")  # pragma: allowlist secret
    assert status == 200
    assert 'haproxy_backend_status{proxy="be_notes_api",state="UP"} 1' in metrics
    # The password is in no file but users.cfg, and there only as a hash.
    assert "molecule-only-edge-stats-pw" not in host.check_output("grep -r . /etc/slipway/edge-proxy || true")


def test_the_proxy_container_is_limited_and_health_checked(host: Any) -> None:
    info = json.loads(host.check_output("docker inspect edge-proxy"))[0]
    config = info["HostConfig"]
    assert config["Memory"] == 512 * 1024 * 1024
    assert config["NanoCpus"] == 1_000_000_000
    assert config["PidsLimit"] == 256
    assert config["CapDrop"] == ["ALL"] and not config["CapAdd"]
    assert config["ReadonlyRootfs"] is True
    assert "no-new-privileges" in config["SecurityOpt"]
    result = host.run(
        "for i in $(seq 40); do s=$(docker inspect -f '{{.State.Health.Status}}' edge-proxy); "
        '[ "$s" = healthy ] && exit 0; sleep 0.5; done; echo "$s"; exit 1'
    )
    assert result.rc == 0, f"edge-proxy health: {result.stdout}"


def test_runtime_api_is_a_host_socket(host: Any) -> None:
    sock = host.file("/run/slipway/haproxy/admin.sock")
    assert sock.is_socket
    assert sock.user in ("99", "haproxy") or sock.uid == 99
    assert oct(sock.mode) == "0o660"
    # No TCP listener for the runtime API: HAProxy (uid 99) listens on 80 and 8404 only.
    listening = host.check_output("docker exec edge-proxy cat /proc/net/tcp /proc/net/tcp6")
    rows = [line.split() for line in listening.splitlines() if "local_address" not in line]
    ports = {int(row[1].rsplit(":", 1)[1], 16) for row in rows if row[3] == "0A" and row[7] == "99"}
    assert ports == {80, 8404}


def run_load(host: Any, actions: str, seconds: int = 12) -> dict[str, Any]:
    """A bounded client loop (4 kept-alive + 4 new-connection workers on 127.0.0.1) while `actions` run."""
    result = host.run(
        f"python3 {WORK}/load_client.py 127.0.0.1 80 notes.localhost {seconds} 4 4 5000 > {WORK}/load.json & "
        f"sleep 1; {actions}; wait; cat {WORK}/load.json"
    )
    assert result.rc == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"load: {report}")
    return report


def test_switch_under_load_loses_no_request(host: Any) -> None:
    switches = " && ".join(f"{PROXY} switch notes-api {c} >/dev/null && sleep 0.4" for c in ["green", "blue"] * 3)
    report = run_load(host, switches, seconds=16)
    assert report["errors"] == 0, report
    assert report["requests"] > 500, report
    assert report["answers"].get("green", 0) > 0 and report["answers"].get("blue", 0) > 0, report
    status = json.loads(proxy(host, "status", "notes-api"))
    assert status["live"] == "blue" and status["serving"] == ["blue"], status
    assert status["servers"]["green"]["admin"] == "drain", status


def test_drained_colour_has_no_sessions_left(host: Any) -> None:
    proxy(host, "wait-drained", "notes-api", "green", "--timeout", "10")


def test_seamless_reload_under_load_loses_no_request(host: Any) -> None:
    reloads = " && ".join(f"{PROXY} reload >/dev/null && sleep 1" for _ in range(5))
    report = run_load(host, reloads)
    assert report["errors"] == 0, report
    assert report["requests"] > 500, report
    assert set(report["answers"]) == {"blue"}, report


def test_live_colour_survives_reload_and_restart(host: Any) -> None:
    proxy(host, "switch", "notes-api", "green")
    assert "SLIPWAY_LIVE_notes_api green" in host.file("/etc/slipway/edge-proxy/live/notes-api.cfg").content_string
    proxy(host, "reload")
    assert get(host, "notes.localhost")["body"].startswith("notes-api green")
    host.run_expect([0], "docker restart edge-proxy")
    wait_serving(host, "notes-api", "green")
    assert get(host, "notes.localhost")["body"].startswith("notes-api green")
    status = json.loads(proxy(host, "status", "notes-api"))
    assert status["servers"]["blue"]["admin"] == "maint", status
    proxy(host, "switch", "notes-api", "blue")


def test_role_renders_a_forced_live_colour(host: Any, run_playbook: RunPlaybook) -> None:
    converge = HERE.parent / "converge.yml"
    for colour in ("green", "blue"):
        result = run_playbook(converge, "-e", json.dumps({"edge_proxy_live_colours": {"notes-api": colour}}))
        assert result.returncode == 0, result.stdout[-3000:]
        assert proxy(host, "live", "notes-api").strip() == colour
        wait_serving(host, "notes-api", colour)
        assert get(host, "notes.localhost")["body"].startswith(f"notes-api {colour}")


def test_a_service_added_to_the_registry_is_routed_after_one_converge(host: Any, run_playbook: RunPlaybook) -> None:
    """The runbook's "add a service" path: registry entry, `infra.yml` (here the scenario's converge), deploy."""
    converge = HERE.parent / "converge.yml"
    services = json.loads(host.check_output("cat /etc/slipway/edge-proxy/slipway-proxy.json"))["services"]
    registry = {
        name: {
            "image": f"slipway/{name}",
            "version": "v1.0.0",
            "port": s["port"],
            "domain": s["domain"],
            "health_path": s["health_path"],
        }
        for name, s in services.items()
    }
    registry["kite"] = {
        "image": "slipway/kite",
        "version": "v1.0.0",
        "port": 8000,
        "domain": "kite.localhost",
        "health_path": "/health",
    }
    host.run("docker rm -f kite-blue")
    try:
        result = run_playbook(converge, "-e", json.dumps({"slipway_services": registry}))
        assert result.returncode == 0, result.stdout[-3000:]
        assert json.loads(proxy(host, "status", "kite"))["backend"] == "be_kite"
        host.run_expect(
            [0],
            f"docker run -d --name kite-blue --network {NETWORK} -v {WORK}/backend.py:/backend.py:ro "
            "slipway/test-probe:bookworm python3 /backend.py kite blue 8000",
        )
        wait_serving(host, "kite", "blue")
        assert get(host, "kite.localhost")["body"].startswith("kite blue")
        assert get(host, "notes.localhost")["status"] == 200
    finally:
        host.run("docker rm -f kite-blue")
        result = run_playbook(converge)  # the scenario's registry again
        assert result.returncode == 0, result.stdout[-3000:]
    assert get(host, "kite.localhost")["status"] == 404


def test_broken_config_is_rejected_and_the_proxy_keeps_serving(host: Any) -> None:
    before = host.file(CONFIG).sha256sum
    env = dict(os.environ)
    result = subprocess.run(
        ["ansible-playbook", "-i", env["MOLECULE_INVENTORY_FILE"], str(HERE.parent / "broken.yml")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert result.returncode != 0, result.stdout
    assert "failed to validate" in result.stdout, result.stdout[-3000:]
    assert host.file(CONFIG).sha256sum == before
    assert get(host, "notes.localhost")["body"].startswith("notes-api blue")
    # The command refuses to reload a configuration that does not pass haproxy -c, and the proxy keeps serving.
    host.run_expect(
        [0],
        f"cp {CONFIG} {WORK}/haproxy.cfg.good && echo 'frontend broken' >> {CONFIG} "
        f"&& echo '    bind :80 nonsense' >> {CONFIG}",
    )
    try:
        refused = host.run(f"{PROXY} reload")
        assert refused.rc == 1 and "invalid" in refused.stderr, refused.stderr
        assert get(host, "notes.localhost")["body"].startswith("notes-api blue")
    finally:
        host.run_expect([0], f"cp {WORK}/haproxy.cfg.good {CONFIG}")


def test_https_with_a_certificate_bundle_redirects_plain_http(host: Any, run_playbook: RunPlaybook) -> None:
    bundle, ca = self_signed_bundle(["notes.localhost", "shop.localhost"])
    host.run_expect([0], "mkdir -p /etc/slipway-test && chmod 0700 /etc/slipway-test")
    put(host, "/etc/slipway-test/bundle.pem", bundle)
    put(host, f"{WORK}/ca.pem", ca)
    converge = HERE.parent / "converge.yml"
    live = proxy(host, "live", "notes-api").strip()
    try:
        result = run_playbook(converge, "-e", json.dumps({"edge_proxy_certificate": "/etc/slipway-test/bundle.pem"}))
        assert result.returncode == 0, result.stdout[-3000:]
        wait_serving(host, "notes-api", live)
        answer = json.loads(host.check_output(f"python3 {WORK}/tls_probe.py notes.localhost /x {WORK}/ca.pem"))
        assert answer["status"] == 200 and answer["body"] == f"notes-api {live} /x\n", answer
        assert answer["headers"]["strict-transport-security"].startswith("max-age="), answer
        assert answer["tls"] in ("TLSv1.2", "TLSv1.3"), answer
        plain = get(host, "notes.localhost", "/x")
        assert plain["status"] == 301, plain
        assert {k.lower(): v for k, v in plain["headers"].items()}["location"] == "https://notes.localhost/x", plain
    finally:
        result = run_playbook(converge)  # back to plain HTTP for whatever runs next
        assert result.returncode == 0, result.stdout[-3000:]
    wait_serving(host, "notes-api", live)
    assert get(host, "notes.localhost")["status"] == 200
