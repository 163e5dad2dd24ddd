"""Behaviour of the edge proxy: Host routing, 404, zero-loss colour switches, reloads and engine restarts, config
rejection.

The proxy runs on the host's network and reaches each colour at its fixed address on the shared network
(`slipway-proxy addresses`), so the test backends are started there with `--ip`, as the rollout starts colours."""

from __future__ import annotations

import base64
import ipaddress
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
ADMIN_SOCKET = "/run/slipway/haproxy/admin.sock"
# Test backends: notes-api has both colours, shop-web only blue (a missing colour is simply down).
BACKENDS = [("notes-api", "blue", 8000), ("notes-api", "green", 8000), ("shop-web", "blue", 8080)]
# Printed by conftest.py when a test fails.
DIAGNOSTIC_CONTAINERS = ("edge-proxy",)

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


# Every listening TCP socket of the host's network namespace (the proxy's is the host's): address, port, uid, and
# the names of the processes holding it (from /proc/<pid>/fd; the proxy's processes are visible from the host).
LISTENERS = """
import ipaddress, json, os
def address(hexa):
    raw = bytes.fromhex(hexa)
    # /proc/net/tcp{,6}: the address in 32-bit words of host (little-endian) byte order.
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(raw))
holders = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        name = open(f"/proc/{pid}/comm").read().strip()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                holders.setdefault(link[8:-1], set()).add(name)
    except OSError:
        continue
out = []
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(table).read().splitlines()[1:]:
        row = line.split()
        if row[3] != "0A":
            continue
        local, port = row[1].rsplit(":", 1)
        out.append({"address": address(local), "port": int(port, 16), "uid": int(row[7]),
                    "processes": sorted(holders.get(row[9], ()))})
print(json.dumps(out))
"""

# The servers of one backend as HAProxy counts them (runtime API `show stat`): status, failed checks, UP->DOWN
# transitions, seconds since the last change.
SERVER_STATS = """
import csv, io, json, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
sock.sendall(f"show stat {sys.argv[2]} 4 -1\\n".encode())
data = b""
while chunk := sock.recv(65536):
    data += chunk
rows = csv.DictReader(io.StringIO(data.decode()[2:]))
keys = ("status", "chkfail", "chkdown", "lastchg", "downtime")
print(json.dumps({row["svname"]: {k: row[k] for k in keys} for row in rows}))
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


def addresses(host: Any, *services: str) -> dict[str, Any]:
    """The shared network's plan and each service's colour addresses (slots are allocated for new services)."""
    out = host.check_output(f"{PROXY} addresses --network {NETWORK} {' '.join(services)}")
    return cast("dict[str, Any]", json.loads(out))


def run_backend(host: Any, plan: dict[str, Any], service: str, colour: str, command: str) -> str:
    """(Re)start the test container <service>-<colour> at the colour's fixed address; returns that address."""
    name, ip = f"{service}-{colour}", plan["services"][service][colour][0]  # the first replica
    host.run(f"docker rm -f {name}")
    host.run_expect(
        [0],
        f"docker run -d --name {name} --network {NETWORK} --ip {ip} -v {WORK}/backend.py:/backend.py:ro "
        f"slipway/test-probe:bookworm {command}",
    )
    return cast(str, ip)


def listeners(host: Any) -> list[dict[str, Any]]:
    return cast("list[dict[str, Any]]", json.loads(host.check_output(f"python3 {WORK}/listeners.py")))


def server_stats(host: Any, backend: str) -> dict[str, dict[str, str]]:
    out = host.check_output(f"python3 {WORK}/server_stats.py {ADMIN_SOCKET} {backend}")
    return cast("dict[str, dict[str, str]]", json.loads(out))


def wait_serving(host: Any, service: str, colour: str) -> None:
    check = f"import json,sys; s=json.load(sys.stdin); sys.exit(0 if '{colour}' in s['serving'] else 1)"
    result = host.run(
        f'for i in $(seq 60); do {PROXY} status {service} | python3 -c "{check}" && exit 0; sleep 0.5; done; exit 1'
    )
    if result.rc != 0:
        logs = host.run("docker logs --tail 30 edge-proxy 2>&1").stdout
        pytest.fail(f"{service}-{colour} never came up:\n{proxy(host, 'status', service)}\n{logs}")


@pytest.fixture(scope="module")
def plan(host: Any) -> dict[str, Any]:
    """The addresses of the scenario's services, read once (the converge allocated their slots)."""
    return addresses(host, "notes-api", "shop-web")


@pytest.fixture(scope="module", autouse=True)
def backends(host: Any, plan: dict[str, Any]) -> Iterator[None]:
    put(host, f"{WORK}/backend.py", (HERE / "backend.py").read_text())
    put(host, f"{WORK}/load_client.py", (HERE / "load_client.py").read_text())
    put(host, f"{WORK}/probe.py", PROBE)
    put(host, f"{WORK}/ws_client.py", (HERE / "ws_client.py").read_text())
    put(host, f"{WORK}/tls_probe.py", TLS_PROBE)
    put(host, f"{WORK}/listeners.py", LISTENERS)
    put(host, f"{WORK}/server_stats.py", SERVER_STATS)
    for service, colour, port in BACKENDS:
        run_backend(host, plan, service, colour, f"python3 /backend.py {service} {colour} {port}")
    wait_serving(host, "notes-api", "blue")
    wait_serving(host, "shop-web", "blue")
    yield
    for service, colour, _ in BACKENDS:
        host.run(f"docker rm -f {service}-{colour}")


def test_routes_by_host_header(host: Any) -> None:
    assert get(host, "notes.localhost", "/x")["body"] == "notes-api blue /x\n"
    assert get(host, "shop.localhost:80", "/y")["body"] == "shop-web blue /y\n"
    assert get(host, "NOTES.localhost")["body"].startswith("notes-api blue")


def test_servers_are_the_colours_fixed_addresses(host: Any, plan: dict[str, Any]) -> None:
    # Addresses, not names: no request depends on Docker's DNS. Fixed addresses sit in the reserved upper half,
    # out of Docker's pool (ip_range) for containers started without one.
    assert "resolvers" not in host.file(CONFIG).content_string
    pool = ipaddress.ip_network(plan["ip_range"])
    for service in ("notes-api", "shop-web"):
        servers = json.loads(proxy(host, "status", service))["servers"]
        for colour in ("blue", "green"):
            assert servers[colour]["address"] == plan["services"][service][colour][0], servers
            assert ipaddress.ip_address(servers[colour]["address"]) not in pool, plan


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


def test_switch_to_an_unhealthy_colour_is_refused(host: Any, plan: dict[str, Any]) -> None:
    # A running container that does not answer its health check: never gets traffic, the live colour stays.
    run_backend(host, plan, "shop-web", "green", "sleep 300")
    try:
        refused = host.run(f"{PROXY} switch shop-web green --timeout 5")
        assert refused.rc == 1 and "did not pass its health checks" in refused.stderr, refused.stderr
        status = json.loads(proxy(host, "status", "shop-web"))
        assert status["live"] == "blue" and status["serving"] == ["blue"], status
        assert status["servers"]["green"]["total_sessions"] == 0, status
        assert get(host, "shop.localhost")["body"].startswith("shop-web blue")
    finally:
        host.run("docker rm -f shop-web-green")


def test_prepare_checks_a_new_colour_without_traffic_then_switch_uses_it(host: Any, plan: dict[str, Any]) -> None:
    # The rollout's order: start the idle colour, `prepare` (fresh checks, no traffic), its own health gate, then
    # `switch --prepared`, which need not restart the checks.
    refused = host.run(f"{PROXY} prepare shop-web blue")
    assert refused.rc == 1 and "is the live colour" in refused.stderr, refused.stderr
    assert get(host, "shop.localhost")["body"].startswith("shop-web blue")
    run_backend(host, plan, "shop-web", "green", "python3 /backend.py shop-web green 8080")
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


def test_switch_marks_up_a_colour_the_caller_verified_at_the_same_address(host: Any, plan: dict[str, Any]) -> None:
    # The rollout's health gate checks the new container itself; `--verified-address` names where. At that
    # address the proxy need not wait for `rise` fresh checks of its own (2 x 250 ms at least); at any other it does.
    fixed = run_backend(host, plan, "shop-web", "green", "python3 /backend.py shop-web green 8080")
    template = '{{(index .NetworkSettings.Networks "' + NETWORK + '").IPAddress}}'
    ip = host.check_output(f"docker inspect -f '{template}' shop-web-green").strip()
    assert ip == fixed
    check = f"import json,sys; sys.exit(0 if json.load(sys.stdin)['servers']['green']['address'] == '{ip}' else 1)"
    try:
        resolved = host.run(
            f'for i in $(seq 40); do {PROXY} status shop-web | python3 -c "{check}" && exit 0; sleep 0.25; done; exit 1'
        )
        assert resolved.rc == 0, proxy(host, "status", "shop-web")
        # Elsewhere: the proxy waits for its own fresh checks, which cannot pass while the container is paused (the
        # pause comes first: between two testinfra calls under load, `rise` checks of a running one can pass).
        host.run_expect([0], "docker pause shop-web-green")
        try:
            proxy(host, "prepare", "shop-web", "green")  # fresh checks: down until `rise` of them pass
            elsewhere = host.run(
                f"{PROXY} switch shop-web green --timeout 0.2 --prepared --verified-address 10.255.0.1")
        finally:
            host.run("docker unpause shop-web-green")
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


def can_connect(host: Any, address: str, port: int) -> bool:
    return bool(host.run(f"python3 -c \"import socket; socket.create_connection(('{address}', {port}), 2)\"").rc == 0)


def test_no_container_publishes_ports_and_the_edge_listens_on_the_host(host: Any, plan: dict[str, Any]) -> None:
    published = {
        name: ports
        for name, _, ports in (
            line.partition("|") for line in host.check_output("docker ps --format '{{.Names}}|{{.Ports}}'").splitlines()
        )
    }
    assert "edge-proxy" in published, published
    assert all(not ports for ports in published.values()), published
    info = json.loads(host.check_output("docker inspect edge-proxy"))[0]
    assert info["HostConfig"]["NetworkMode"] == "host", info["HostConfig"]
    assert not info["HostConfig"]["PortBindings"], info["HostConfig"]
    assert list(info["NetworkSettings"]["Networks"]) == ["host"], info["NetworkSettings"]["Networks"]
    # The stats port listens on the shared network's gateway (the host's address on it), nowhere else.
    gateway = host.check_output(f"docker network inspect -f '{{{{(index .IPAM.Config 0).Gateway}}}}' {NETWORK}")
    assert gateway.strip() == plan["gateway"]
    assert can_connect(host, "127.0.0.1", 80)
    assert can_connect(host, plan["gateway"], 80)  # 0.0.0.0:80: every host address
    assert can_connect(host, plan["gateway"], 8404)
    assert not can_connect(host, "127.0.0.1", 8404)
    on_8404 = {(s["address"], tuple(s["processes"])) for s in listeners(host) if s["port"] == 8404}
    assert on_8404 == {(plan["gateway"], ("haproxy",))}, on_8404


# GET <url> (http://<gateway>:8404<path>) from a container on the shared network (where every app container is),
# with basic auth when a user:password is given; prints the status, then the body.
STATS_GET = """
import base64, sys, urllib.error, urllib.request
req = urllib.request.Request(sys.argv[1])
if len(sys.argv) > 2:
    req.add_header("Authorization", "Basic " + base64.b64encode(sys.argv[2].encode()).decode())
try:
    resp = urllib.request.urlopen(req, timeout=5)
    print(resp.status); print(resp.read().decode())
except urllib.error.HTTPError as err:
    print(err.code)
"""


def stats_get(host: Any, gateway: str, path: str, credentials: str | None = None) -> tuple[int, str]:
    put(host, f"{WORK}/stats_get.py", STATS_GET)
    args = f"'http://{gateway}:8404{path}'" + (f" '{credentials}'" if credentials else "")
    out = host.check_output(
        f"docker run --rm --network {NETWORK} -v {WORK}/stats_get.py:/s.py:ro slipway/test-probe:bookworm "
        f"python3 /s.py {args}"
    )
    status, _, body = out.partition("\n")
    return int(status), body


def test_stats_and_metrics_answer_only_the_stats_user(host: Any, plan: dict[str, Any]) -> None:
    gateway = plan["gateway"]
    for path in ("/metrics", "/stats"):
        assert stats_get(host, gateway, path)[0] == 401
        assert stats_get(host, gateway, path, "prometheus:not-the-password")[0] == 401  # pragma: allowlist secret
        assert stats_get(host, gateway, path, "admin:molecule-only-edge-stats-pw")[0] == 401  # pragma: allowlist secret
    status, metrics = stats_get(
        host,
        gateway,
        "/metrics",
        "prometheus:molecule-only-edge-stats-pw",  # pragma: allowlist secret
    )
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
    # Root in the container with one capability, to bind port 80 on the host's network.
    assert info["Config"]["User"] == "0:0"
    assert config["CapDrop"] == ["ALL"]
    assert config["CapAdd"] in (["NET_BIND_SERVICE"], ["CAP_NET_BIND_SERVICE"]), config["CapAdd"]
    assert config["ReadonlyRootfs"] is True
    assert "no-new-privileges" in config["SecurityOpt"]
    # What the kernel enforces on every HAProxy process: that one capability (bit 10) and no new privileges.
    pids = host.check_output("docker top edge-proxy -eo pid | tail -n +2").split()
    assert pids
    for pid in pids:
        status = dict(line.split(":\t", 1) for line in host.file(f"/proc/{pid}/status").content_string.splitlines())
        for kind in ("CapEff", "CapPrm", "CapBnd"):
            assert int(status[kind], 16) == 1 << 10, (pid, kind, status[kind])
        assert status["NoNewPrivs"].strip() == "1", pid
    result = host.run(
        "for i in $(seq 40); do s=$(docker inspect -f '{{.State.Health.Status}}' edge-proxy); "
        '[ "$s" = healthy ] && exit 0; sleep 0.5; done; echo "$s"; exit 1'
    )
    assert result.rc == 0, f"edge-proxy health: {result.stdout}"


def test_runtime_api_is_a_host_socket(host: Any, plan: dict[str, Any]) -> None:
    sock = host.file(ADMIN_SOCKET)
    assert sock.is_socket
    assert sock.uid == 0
    assert oct(sock.mode) == "0o660"
    # No TCP listener for the runtime API: in the host's namespace (the proxy's), HAProxy's listening sockets are
    # 80 on every address and 8404 on the gateway, and nothing else.
    sockets = {(s["address"], s["port"], s["uid"]) for s in listeners(host) if "haproxy" in s["processes"]}
    assert sockets == {("0.0.0.0", 80, 0), (plan["gateway"], 8404, 0)}, sockets  # noqa: S104 - what it binds


def run_load(host: Any, actions: str, seconds: int = 12) -> dict[str, Any]:
    """A bounded client loop (4 kept-alive + 4 new-connection workers on 127.0.0.1) while `actions` run."""
    result = host.run(
        f"python3 {WORK}/load_client.py 127.0.0.1 80 notes.localhost {seconds} 4 4 5000 > {WORK}/load.json & "
        f"sleep 1; {actions}; wait; cat {WORK}/load.json"
    )
    assert result.rc == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"load: { {k: v for k, v in report.items() if k != 'timeline'} }")
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


def edge_state(host: Any) -> dict[str, Any]:
    state = json.loads(host.check_output("docker inspect edge-proxy"))[0]
    return {"StartedAt": state["State"]["StartedAt"], "Pid": state["State"]["Pid"], "Restarts": state["RestartCount"]}


def test_engine_restarts_under_load_lose_no_request(host: Any) -> None:
    """Issue 13, item 8: restarting the Docker engine (a package upgrade does) is invisible to the edge's clients.
    Neither the edge's listening socket (the host's own) nor its servers (fixed addresses) depend on the engine."""
    # The host as docker_engine provisions it (prepare.yml): containers survive the engine's restart.
    assert json.loads(host.file("/etc/docker/daemon.json").content_string)["live-restore"] is True
    assert host.check_output("docker info -f '{{.LiveRestoreEnabled}}'").strip() == "true"
    live = proxy(host, "live", "notes-api").strip()
    idle = "green" if live == "blue" else "blue"
    # The idle colour health-checked too (drain: checked, no traffic), as after a switch, so both are watched.
    proxy(host, "prepare", "notes-api", idle)
    check = f"import json,sys; sys.exit(0 if json.load(sys.stdin)['servers']['{idle}']['status'] == 'DRAIN' else 1)"
    checked = host.run(
        f'for i in $(seq 40); do {PROXY} status notes-api | python3 -c "{check}" && exit 0; sleep 0.25; done; exit 1'
    )
    assert checked.rc == 0, proxy(host, "status", "notes-api")
    before, stats_before = edge_state(host), server_stats(host, "be_notes_api")
    assert {s["status"] for s in stats_before.values()} == {"UP", "DRAIN"}, stats_before
    # Two restarts, 3 s apart; each window runs from the restart command until `docker info` answers again.
    windows = f"{WORK}/restart-windows"
    restart = (
        f"date +%s.%N >> {windows} && systemctl restart docker && "
        "for i in $(seq 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done && "
        f"docker info >/dev/null && date +%s.%N >> {windows}"
    )
    # 20 s of load: the actions take 1 + T + 3 + T s, and an engine restart (T) took up to 4 s on a loaded machine.
    report = run_load(host, f"rm -f {windows}; {restart} && sleep 3 && {restart}", seconds=20)
    times = [float(t) for t in host.file(windows).content_string.split()]
    assert len(times) == 4, times
    timeline = {int(tick): count for tick, count in report["timeline"].items()}
    during = [
        sum(count for tick, count in timeline.items() if start * 10 <= tick <= end * 10)
        for start, end in zip(times[::2], times[1::2], strict=True)
    ]
    print(
        f"engine restarts: {[round(end - start, 1) for start, end in zip(times[::2], times[1::2], strict=True)]} s,"
        f" requests answered during each: {during}"
    )
    assert max(timeline) / 10 > times[-1], "the load stopped before the last restart was over"
    assert report["errors"] == 0, report
    assert all(n > 0 for n in during), during
    assert set(report["answers"]) == {live}, report
    # The edge was not restarted (Docker 20.10 stops its health probes after a live restore, moby#41871; the next
    # test restarts the container), and neither colour failed a check or went down at the proxy.
    assert edge_state(host) == before
    stats_after = server_stats(host, "be_notes_api")
    print(f"servers before: {stats_before}, after: {stats_after}")
    for server, was in stats_before.items():
        now = stats_after[server]
        assert (now["status"], now["chkfail"], now["chkdown"]) == (was["status"], was["chkfail"], was["chkdown"]), (
            server,
            stats_before,
            stats_after,
        )
    status = json.loads(proxy(host, "status", "notes-api"))
    assert status["serving"] == [live], status


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
        added = json.loads(proxy(host, "status", "kite"))
        # Routed, not serving: no container behind it (HAProxy reads "UP 1/3" until its first check fails).
        assert (added["backend"], added["serving"]) == ("be_kite", []), added
        # The converge gave kite its slot; the deploy starts its colour there.
        run_backend(host, addresses(host, "kite"), "kite", "blue", "python3 /backend.py kite blue 8000")
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
