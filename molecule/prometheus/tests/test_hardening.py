"""Hardening of the prometheus role (audit findings): the exporters answer nobody on the shared network and
relay no password, every secret-bearing file belongs to its one reader and is readable through no group, the
node exporter (host / mounted) reads no seeded secret, `docker inspect` shows none, and every container runs
with least privilege and resource limits."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

HERE = Path(__file__).parent
WORK = "/tmp/slipway-prom-hardening"  # noqa: S108 - inside the throwaway host container
NETWORK = "infra-shared-network"
PROBE = "slipway/test-probe:bookworm"
PROMETHEUS = "prometheus"
EXPORTERS = {"node-exporter": 9100, "postgres-exporter": 9187, "redis-exporter": 9121}
CONTAINERS = [PROMETHEUS, *EXPORTERS]
CONFIG_DIRS = ["/etc/slipway/prometheus", "/etc/slipway/prometheus-exporters"]
# The node exporter's uid:gid (the role's default): a uid no package and no useradd allocates (Debian policy
# reserves 65000-65533), so it owns no file on the host.
NODE_EXPORTER_USER = "65533:65533"
DIAGNOSTIC_CONTAINERS = CONTAINERS


def seeded_secrets() -> dict[str, str]:
    """The scenario's vault_* values (molecule.yml): what must never leak."""
    config = yaml.safe_load((HERE.parent / "molecule.yml").read_text())
    host_vars = config["provisioner"]["inventory"]["host_vars"]["slipway-prometheus"]
    found = {k: str(v) for k, v in host_vars.items() if k.startswith("vault_")}
    assert len(found) >= 3, found
    return found


SECRETS = seeded_secrets()


def inspect(host: Any, name: str) -> dict[str, Any]:
    return cast("dict[str, Any]", json.loads(host.check_output(f"docker inspect {name}"))[0])


def probe(host: Any, script: str, *args: str) -> str:
    """Run one of this directory's scripts in a throwaway container on the shared network (any app's view)."""
    quoted = " ".join(f"'{a}'" for a in args)
    return cast(
        "str",
        host.check_output(
            f"docker run --rm --network {NETWORK} -v {WORK}/{script}:/{script}:ro {PROBE} python3 /{script} {quoted}"
        ),
    )


@pytest.fixture(scope="module", autouse=True)
def helpers(host: Any) -> Iterator[None]:
    host.run_expect([0], f"mkdir -p {WORK}")
    for script in ("reach.py", "listener.py"):
        data = base64.b64encode((HERE / script).read_bytes()).decode()
        host.run_expect([0], f"echo {data} | base64 -d > {WORK}/{script}")
    yield
    host.run("docker rm -f fake-redis")
    host.run(f"rm -rf {WORK}")


def test_no_exporter_port_answers_on_the_shared_network(host: Any) -> None:
    prometheus = [f"{PROMETHEUS}:9090"]  # the control: the probe does reach Prometheus' own port
    by_name = [f"{name}:{port}" for name, port in EXPORTERS.items()]
    # ... and the exporters' ports at Prometheus' address (where they listen when they share its namespace).
    at_prometheus = [f"{PROMETHEUS}:{port}" for port in EXPORTERS.values()]
    answer = json.loads(probe(host, "reach.py", *prometheus, *by_name, *at_prometheus))
    assert answer[f"{PROMETHEUS}:9090"] is True, answer
    reachable = [address for address in by_name + at_prometheus if answer[address]]
    assert reachable == [], f"exporter ports an app container reaches: {reachable}"


def fake_redis_logged(host: Any, text: str) -> None:
    """Wait up to 10 s until the fake Redis's log shows `text`."""
    host.run_expect([0], f"for i in $(seq 1 50); do docker logs fake-redis 2>&1 | grep -q {text} && exit 0; "
                         "sleep 0.2; done; exit 1")


def test_the_redis_exporter_relays_no_password_to_a_listener_an_app_controls(host: Any) -> None:
    host.run("docker rm -f fake-redis")
    host.run_expect(
        [0],
        f"docker run -d --name fake-redis --network {NETWORK} -v {WORK}/listener.py:/listener.py:ro {PROBE} "
        "python3 /listener.py 6379 60",
    )
    fake_redis_logged(host, "listening")
    target = "redis://fake-redis:6379"
    for exporter in ("redis-exporter:9121", f"{PROMETHEUS}:9121"):
        # Whatever the answer (refused is the expected one), what matters is what reached the listener.
        host.run(
            f"docker run --rm --network {NETWORK} {PROBE} python3 -c "
            f"\"import urllib.request; urllib.request.urlopen('http://{exporter}/scrape?target={target}', timeout=10)\""
        )
    # Then a connection of the test's own: the listener serves one connection after another and prints each in turn,
    # so once its line is in the log, every line of an earlier connection is too (an absence read at once could
    # miss a line still on its way to `docker logs`).
    host.run(
        f"docker run --rm --network {NETWORK} {PROBE} python3 -c "
        "\"import socket; socket.create_connection(('fake-redis', 6379), timeout=10).sendall(b'END-OF-TEST')\""
    )
    fake_redis_logged(host, "END-OF-TEST")
    received = host.check_output("docker logs fake-redis 2>&1")
    print(f"fake-redis saw:\n{received}")
    leaked = [name for name, value in SECRETS.items() if value in received]
    assert leaked == [], f"sent to a listener an app controls: {leaked}\n{received}"
    assert [line for line in received.splitlines() if "connection from" in line and "END-OF-TEST" not in line] == [], (
        received)


def test_prometheus_scrapes_the_exporters_on_its_loopback(host: Any) -> None:
    config = host.file("/etc/slipway/prometheus/prometheus.yml").content_string
    for port in EXPORTERS.values():
        assert f"127.0.0.1:{port}" in config, config
    for name in EXPORTERS:
        assert f"{name}:" not in config, config


def _readers(host: Any, path: str) -> list[tuple[str, str]]:
    """(container, user) of each of the role's containers that mounts `path` (a bind of it or of a directory
    above it), leaving out the node exporter's mount of the host's / (it must read only world-readable files)."""
    readers = []
    for name in CONTAINERS:
        info = inspect(host, name)
        for mount in info["Mounts"]:
            source = mount["Source"].rstrip("/") or "/"
            if source == "/" and name == "node-exporter":
                continue
            if path == source or path.startswith(source + "/"):
                readers.append((name, info["Config"]["User"]))
    return readers


def test_every_secret_bearing_file_belongs_to_its_one_reader_and_no_group(host: Any) -> None:
    needles = " ".join(f"-e '{v}'" for v in SECRETS.values())
    dirs = " ".join(d for d in CONFIG_DIRS if host.file(d).exists)
    files = host.run(f"grep -rlF {needles} {dirs}").stdout.split()
    assert "/etc/slipway/prometheus/secrets/web_password" in files, files
    for path in [*files, "/etc/slipway/prometheus/web.yml"]:  # web.yml: the password's bcrypt hash
        stat = host.file(path)
        readers = _readers(host, path)
        assert len(readers) == 1, (path, readers)
        (name, user) = readers[0]
        uid = int(user.split(":")[0])
        print(f"{path}: {stat.uid}:{stat.gid} {stat.mode:o}, read by {name} ({user})")
        assert (stat.uid, stat.gid) == (uid, 0), (path, stat.uid, stat.gid, name, user)
        assert stat.mode & 0o077 == 0 and stat.mode & 0o400, (path, oct(stat.mode))
    web_password = host.file("/etc/slipway/prometheus/secrets/web_password")
    assert (web_password.uid, web_password.gid, web_password.mode) == (65534, 0, 0o400)


def test_the_node_exporter_runs_as_a_uid_and_gid_that_own_nothing(host: Any) -> None:
    assert inspect(host, "node-exporter")["Config"]["User"] == NODE_EXPORTER_USER
    uid, gid = NODE_EXPORTER_USER.split(":")
    owned = host.run(
        f"find / \\( -path /proc -o -path /sys -o -path /dev -o -path /var/lib/docker/overlay2 \\) -prune "
        f"-o \\( -uid {uid} -o -gid {gid} \\) -print"
    ).stdout.split()
    assert owned == [], owned


def test_the_node_exporter_reads_no_seeded_secret_through_its_host_mounts(host: Any) -> None:
    """Search everything the running node exporter can read under /host/root (and the processes' cmdline and
    environ under /host/proc) for every seeded secret. A world-readable canary proves the search works.

    The values are handed over in a file only the exporter's uid can read (never on a command line: the search
    also reads /proc/*/cmdline, its own included); the search skips that one file.
    """
    user = inspect(host, "node-exporter")["Config"]["User"] or "0:0"
    canary = f"slipway-canary-{secrets.token_hex(8)}"
    needles, canary_file = f"{WORK}/needles", f"{WORK}/canary.txt"
    data = base64.b64encode(("\n".join([*SECRETS.values(), canary]) + "\n").encode()).decode()
    host.run_expect([0], f"echo {canary} > {canary_file} && chmod 0644 {canary_file}")
    host.run_expect([0], f"echo {data} | base64 -d > {needles} && chown {user} {needles} && chmod 0400 {needles}")
    skip = ["proc", "sys", "dev", "var/lib/docker/overlay2", needles.lstrip("/"),
            "opt/slipway-test-images"]  # the test harness' image archives (GBs, no secret): time only
    prune = " -o ".join(f"-path /host/root/{p}" for p in skip)
    search = (
        f"{{ find /host/root \\( {prune} \\) -prune -o -type f -readable -print0; "
        f"find /host/proc -mindepth 2 -maxdepth 2 \\( -name cmdline -o -name environ \\) -readable -print0; }} "
        f"2>/dev/null | xargs -0 -r grep -lF -f /host/root{needles} 2>/dev/null; true"
    )
    try:
        result = host.run(f"timeout 240 docker exec node-exporter sh -c '{search}'")
    finally:
        host.run(f"rm -f {needles}")
    assert result.rc == 0, f"the search did not finish (rc {result.rc}): {result.stderr}"
    found = result.stdout.split()
    print(f"files with a needle: {found}")
    assert f"/host/root{canary_file}" in found, f"the search missed the world-readable canary: {found}"
    leaked = [path for path in found if path != f"/host/root{canary_file}"]
    assert leaked == [], f"the node exporter reads a seeded secret in {leaked}"


def test_docker_inspect_shows_no_secret(host: Any) -> None:
    for name in CONTAINERS:
        text = host.check_output(f"docker inspect {name}")
        leaked = [key for key, value in SECRETS.items() if value in text]
        assert leaked == [], f"docker inspect {name} shows {leaked}"


def test_every_container_runs_with_least_privilege_and_limits(host: Any) -> None:
    prometheus_id = inspect(host, PROMETHEUS)["Id"]
    for name in CONTAINERS:
        info = inspect(host, name)
        hc = info["HostConfig"]
        summary = {k: hc[k] for k in ("Memory", "NanoCpus", "PidsLimit", "CapDrop", "CapAdd", "ReadonlyRootfs",
                                      "SecurityOpt", "PidMode", "NetworkMode", "Privileged")}
        print(f"{name}: user {info['Config']['User']!r} {summary}")
        assert hc["Memory"] > 0 and hc["NanoCpus"] > 0 and (hc["PidsLimit"] or 0) > 0, (name, summary)
        assert hc["MemorySwap"] == hc["Memory"], (name, "swap beyond the memory limit", hc["MemorySwap"])
        assert hc["CapDrop"] == ["ALL"] and not hc["CapAdd"], (name, summary)
        assert hc["ReadonlyRootfs"] is True and hc["Privileged"] is False, (name, summary)
        assert "no-new-privileges" in (hc["SecurityOpt"] or []), (name, summary)
        assert hc["PidMode"] in ("", "private"), (name, summary)
        assert info["Config"]["User"] not in ("", "0", "root") and not info["Config"]["User"].startswith("0:")
        if name in EXPORTERS:
            assert hc["NetworkMode"] == f"container:{prometheus_id}", (name, summary)
        else:
            assert hc["NetworkMode"] == NETWORK, (name, summary)
