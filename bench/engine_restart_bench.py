#!/usr/bin/env python3
"""Traffic through the edge proxy while the host's Docker engine restarts (live-restore on).

Load, no retries, every failed request counted, each client at most one request per --interval seconds, the
whole run bounded by --max-seconds:
  outside  this machine -> 127.0.0.1:--port (the local host container's publish) -> the host's published port 80
           (the inner engine's DNAT) -> edge-proxy. Kept-alive and new-connection clients: rollout_bench's
           `client` and `Stats`.
  inside   a small python3 client inside the host container, straight at the edge container's address on its
           network (no publish, no NAT): only the proxy itself is in the path.
  direct   (optional, --direct-target) the same small client run on this machine at one of the host container's
           own addresses, e.g. a host-networked proxy's port: the path a client has to a VM without Docker's NAT.

Meanwhile `systemctl restart docker` runs --restarts times inside the host, --pause seconds apart (and a quiet
window before the first one). After each restart every inner container must still run with the same start time
(live-restore). A sampler inside the host records, every 0.1 s, whether the engine's DNAT rule for the published
port is present, whether dockerd runs, and the edge's server states (`show servers state` on the runtime socket):
the evidence for each failure mechanism.

    .venv/bin/python bench/engine_restart_bench.py          # prints the table, writes bench/engine_restart.md

Traffic goes only to 127.0.0.1 and to addresses of the host container and of the containers inside it.
"""

# ruff: noqa: S603, S607 - fixed argument lists: docker and git on this machine
from __future__ import annotations

import argparse
import ipaddress
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollout_bench import Stats, client, write_results

ROOT = Path(__file__).resolve().parent.parent
INNER_PATH = "/tmp/slipway-engine-restart-client.py"  # noqa: S108 - inside the host container, ours alone
STOP_FILE = "/tmp/slipway-engine-restart.stop"  # noqa: S108
KINDS = ["reset", "timeout", "refused", "5xx", "other"]
RESET_ERRORS = {"ConnectionResetError", "RemoteDisconnected", "BrokenPipeError", "ConnectionAbortedError",
                "IncompleteRead", "BadStatusLine"}

# The client inside the host: rollout_bench's `client` connects to 127.0.0.1 only, this one to any address given
# (the edge container's). It stamps every failure with its wall-clock time (one clock: the host container shares
# this machine's kernel) so that failures fall into the windows of the restarts. With --sample it also samples the
# host's state every 0.1 s and prints each change.
INNER_CLIENT = r'''
import http.client, json, os, socket, subprocess, sys, threading, time
cfg = json.loads(sys.argv[1])
stop = threading.Event()
lock = threading.Lock()
ok = {"kept": {}, "new": {}}
fails = []
changes = []

def record(t, err, kind):
    with lock:
        if err:
            fails.append([round(t, 3), err, kind])
        else:
            ok[kind][int(t * 10)] = ok[kind].get(int(t * 10), 0) + 1

def run(kind):
    conn = None
    i = 0
    while not stop.is_set():
        path = cfg["paths"][i % len(cfg["paths"])]
        i += 1
        start = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(cfg["host"], cfg["port"], timeout=10)
            conn.request("GET", path, headers={"Host": cfg["domain"]})
            resp = conn.getresponse()
            resp.read()
            record(time.time(), "" if 200 <= resp.status < 300 else "HTTP %d" % resp.status, kind)
            if kind == "new" or (resp.getheader("connection") or "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as err:
            record(time.time(), type(err).__name__, kind)
            if conn is not None:
                conn.close()
            conn = None
        spent = time.monotonic() - start
        if spent < cfg["interval"]:
            stop.wait(cfg["interval"] - spent)
    if conn is not None:
        conn.close()

def servers():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(1)
    try:
        s.connect(cfg["socket"])
        s.sendall(("show servers state %s\n" % cfg["backend"]).encode())
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except OSError as err:
        return "socket " + type(err).__name__
    finally:
        s.close()
    states = []
    for line in out.decode().splitlines():
        f = line.split()
        if len(f) > 6 and not line.startswith("#"):
            # name addr op_state(2 UP, 0 STOPPED) admin_state(0x20 resolution, 0x04 config maint, 0x01 forced)
            states.append("%s=%s/op%s/adm%s" % (f[3], f[4], f[5], f[6]))
    return " ".join(states)

def dns():
    # One A query for cfg["name"] to Docker's embedded DNS (run in the edge's network namespace): the answer's
    # rcode and address count, or the error.
    q = os.urandom(2) + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    q += b"".join(bytes([len(p)]) + p.encode() for p in cfg["name"].split(".")) + b"\x00\x00\x01\x00\x01"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.25)
    try:
        s.sendto(q, ("127.0.0.11", 53))
        r = s.recv(512)
        return "rcode%d/an%d" % (r[3] & 15, r[6] * 256 + r[7])
    except OSError as err:
        return type(err).__name__
    finally:
        s.close()

def sample():
    last = {}
    while not stop.is_set():
        now = time.time()
        if cfg["dns_only"]:
            state = {"dns": dns()}
        else:
            nat = subprocess.run(["iptables", "-t", "nat", "-S", "DOCKER"], capture_output=True, text=True).stdout
            flt = subprocess.run(["iptables", "-t", "filter", "-S", "DOCKER"], capture_output=True,
                                 text=True).stdout
            dockerd = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout.strip()
            state = {"dnat": str(("--dport %d " % cfg["published"]) in nat),
                     "fwd-accept": str(("--dport %d " % cfg["published"]) in flt),
                     "dockerd": dockerd or "-",
                     "docker-proxy": str(bool(subprocess.run(["pidof", "docker-proxy"],
                                                             capture_output=True).stdout)),
                     "servers": servers() if cfg["socket"] else ""}
        for key, value in state.items():
            if last.get(key) != value:
                changes.append([round(now, 3), key, value])
                last[key] = value
        stop.wait(0.1)

threads = [threading.Thread(target=run, args=(k,), daemon=True)
           for k in ["kept"] * cfg["kept"] + ["new"] * cfg["new"]]
if cfg["sample"]:
    threads.append(threading.Thread(target=sample, daemon=True))
for t in threads:
    t.start()
deadline = time.monotonic() + cfg["max_seconds"]
while time.monotonic() < deadline and not os.path.exists(cfg["stop_file"]):
    time.sleep(0.2)
stop.set()
for t in threads:
    t.join(timeout=15)
print(json.dumps({"ok": ok, "fails": fails, "changes": changes}))
'''


@dataclass
class Window:
    label: str
    start: float  # wall clock (time.time())
    end: float = 0.0
    restart_seconds: float = 0.0
    containers_ok: str = ""
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # placement -> requests/failed/kinds


def kind_of(error: str) -> str:
    if error.startswith("HTTP 5"):
        return "5xx"
    if error in RESET_ERRORS:
        return "reset"
    if error in {"TimeoutError", "timeout"}:
        return "timeout"
    if error == "ConnectionRefusedError":
        return "refused"
    return "other"


def host_sh(container: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True,
                          check=False, timeout=timeout)


def inner_containers(container: str) -> dict[str, str]:
    """name -> "running started-at" of every container inside the host."""
    out = host_sh(container, "docker ps -aq | xargs -r docker inspect -f "
                  "'{{.Name}} {{.State.Status}} {{.State.StartedAt}}'").stdout
    return {line.split()[0].lstrip("/"): " ".join(line.split()[1:]) for line in out.splitlines() if line.strip()}


def allowed_addresses(container: str) -> set[str]:
    """The host container's own addresses and those of the containers inside it: the only non-loopback targets."""
    outer = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                            container], capture_output=True, text=True, check=True).stdout.split()
    inner = host_sh(container, "docker ps -q | xargs -r docker inspect -f "
                    "'{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}'; hostname -I").stdout.split()
    return set(outer) | set(inner)


def split_target(target: str, allowed: set[str]) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    if not ipaddress.ip_address(host).is_loopback and host not in allowed:
        raise SystemExit(f"{target}: not loopback nor an address of the host container or its containers")
    return host, int(port)


def inner_config(args: argparse.Namespace, host: str, port: int, *, sample: bool) -> dict[str, Any]:
    return {"host": host, "port": port, "domain": args.domain, "paths": args.paths.split(","),
            "kept": args.kept_alive, "new": args.new_connection, "interval": args.interval,
            "max_seconds": args.max_seconds, "stop_file": STOP_FILE if sample else args.direct_stop_file,
            "sample": sample, "socket": args.socket, "backend": args.backend, "published": args.published_port,
            "dns_only": False, "name": ""}


def count_windows(windows: list[Window], marks: list[dict[str, tuple[int, dict[str, int]]]],
                  results: dict[str, dict[str, Any] | None], *, outside: bool) -> None:
    for i, w in enumerate(windows):
        for kind in ("kept", "new"):
            if outside:
                w.counts[f"outside {kind}"] = outside_counts(marks[i][kind], marks[i + 1][kind])
        for placement, result in results.items():
            for kind in ("kept", "new"):
                if result is not None:
                    w.counts[f"{placement} {kind}"] = script_counts(result, w, kind)


def error_names(result: dict[str, Any]) -> dict[str, int]:
    names: dict[str, int] = {}
    for _, error, _ in result["fails"]:
        names[error] = names.get(error, 0) + 1
    return names


def snapshot(stats: Stats) -> tuple[int, dict[str, int]]:
    with stats.lock:
        return stats.requests, dict(stats.errors)


def outside_counts(before: tuple[int, dict[str, int]], after: tuple[int, dict[str, int]]) -> dict[str, int]:
    counts = dict.fromkeys(["requests", "failed", *KINDS], 0)
    counts["requests"] = after[0] - before[0]
    for error, n in after[1].items():
        delta = n - before[1].get(error, 0)
        counts[kind_of(error)] += delta
        counts["failed"] += delta
    return counts


def script_counts(result: dict[str, Any], window: Window, kind: str) -> dict[str, int]:
    counts = dict.fromkeys(["requests", "failed", *KINDS], 0)
    counts["requests"] = sum(n for bucket, n in result["ok"][kind].items()
                             if window.start <= int(bucket) / 10 < window.end)
    for t, error, client_kind in result["fails"]:
        if client_kind == kind and window.start <= t < window.end:
            counts["requests"] += 1
            counts["failed"] += 1
            counts[kind_of(error)] += 1
    return counts


def durations(changes: list[list[Any]], window: Window, key: str, bad: Any) -> float:
    """Seconds within the window during which the sampled `key` was in a state for which bad(value) is true."""
    state: str | None = None
    since = window.start
    total = 0.0
    for t, k, value in changes:
        if k != key:
            continue
        if t <= window.start:
            state = value
            continue
        if t >= window.end:
            break
        if state is not None and bad(state):
            total += t - max(since, window.start)
        state, since = value, t
    if state is not None and bad(state):
        total += window.end - max(since, window.start)
    return total


def live_not_up(value: str, live: str) -> bool:
    for item in value.split():
        name, _, rest = item.partition("=")
        if name == live:
            # Serving: operational (op 2) with no admin flag that takes traffic away. 0x04 (config maint, left from a
            # `disabled` server line after `set server ... state ready`) does not: such a server serves (measured).
            op, _, adm = rest.rpartition("/adm")
            return not op.endswith("/op2") or int(adm or "1") & ~0x04 != 0

    return True


def start_direct(args: argparse.Namespace, allowed: set[str]) -> subprocess.Popen[str] | None:
    if not args.direct_target:
        return None
    host, port = split_target(args.direct_target, allowed)
    Path(args.direct_stop_file).unlink(missing_ok=True)
    return subprocess.Popen([sys.executable, "-c", INNER_CLIENT, json.dumps(inner_config(args, host, port,
                                                                                         sample=False))],
                            stdout=subprocess.PIPE, text=True)


def edge_address(container: str, edge: str) -> str:
    """The edge container's address on its network; 127.0.0.1 for an edge on the host's network."""
    if host_network(container, edge):
        return "127.0.0.1"
    out = host_sh(container, "docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' " + edge)
    if not out.stdout.split():
        raise SystemExit(f"no address for {edge} inside {container}: {out.stderr.strip()}")
    return out.stdout.split()[0]


def host_network(container: str, name: str) -> bool:
    return host_sh(container, f"docker inspect -f '{{{{.HostConfig.NetworkMode}}}}' {name}").stdout.strip() == "host"


def restart_engine(container: str, before: dict[str, str], down: float) -> tuple[float, str]:
    """systemctl restart docker inside the host (or stop, `down` seconds, start: an engine slower to come back);
    its duration and whether every container kept running."""
    host_sh(container, "systemctl reset-failed docker.service")  # systemd allows 3 starts a minute (StartLimitBurst)
    start = time.monotonic()
    rc = host_sh(container, f"systemctl stop docker && sleep {down:g} && systemctl start docker" if down
                 else "systemctl restart docker").returncode
    seconds = time.monotonic() - start
    for _ in range(60):  # the engine answers again
        if host_sh(container, "docker info >/dev/null 2>&1").returncode == 0:
            break
        time.sleep(0.5)
    after = inner_containers(container)
    changed = [name for name, state in before.items() if after.get(name) != state]
    text = "all running, none restarted" if not changed else "CHANGED: " + ", ".join(
        f"{n} {before[n]} -> {after.get(n, 'gone')}" for n in changed)
    return seconds, (f"restart rc {rc}; " if rc else "") + text


def main() -> int:  # noqa: PLR0915 - one linear run
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host-container", default="slipway-local")
    parser.add_argument("--port", type=int, default=8080, help="the host's publish on 127.0.0.1 (outside clients)")
    parser.add_argument("--published-port", type=int, default=80, help="the edge's published port inside the host")
    parser.add_argument("--edge", default="edge-proxy", help="the edge container (the inside clients' target)")
    parser.add_argument("--inside-target", default="", help="ADDR:PORT for the inside clients (default: the edge "
                        "container's address, port 80)")
    parser.add_argument("--direct-target", default="", help="ADDR:PORT of the host container for clients on this "
                        "machine that bypass the publish (e.g. a host-networked proxy)")
    parser.add_argument("--direct-stop-file", default="/tmp/slipway-engine-restart-direct.stop")  # noqa: S108
    parser.add_argument("--placements", default="outside,inside", help="comma list of outside, inside")
    parser.add_argument("--socket", default="/run/slipway/haproxy/admin.sock", help="the edge's runtime API socket "
                        "inside the host ('' to skip sampling server states)")
    parser.add_argument("--backend", default="be_notes_api")
    parser.add_argument("--live", default="", help="the live server's name (default: notes-api-<persisted colour>)")
    parser.add_argument("--domain", default="notes.localhost")
    parser.add_argument("--paths", default="/version,/health,/notes?limit=5", help="comma list, requested in turn "
                        "(/version alone touches neither the database nor Redis)")
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--pause", type=float, default=15, help="seconds after each restart (and before the first)")
    parser.add_argument("--down-seconds", type=float, default=0, help="stop the engine, wait this long, start it "
                        "(instead of systemctl restart): an engine slower to come back")
    parser.add_argument("--kept-alive", type=int, default=4, help="per placement")
    parser.add_argument("--new-connection", type=int, default=4, help="per placement")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between a client's requests")
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--title", default="before: the edge on the bridge network, servers by name (Docker DNS)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "engine_restart.md"))
    parser.add_argument("--results", default=str(ROOT / "bench" / "results.md"),
                        help="the page of figures this run's summary goes in, as a section of its own ('' for none)")
    args = parser.parse_args()
    placements = [p for p in args.placements.split(",") if p]
    hc = args.host_container

    daemon = json.loads(host_sh(hc, "cat /etc/docker/daemon.json").stdout or "{}")
    if not daemon.get("live-restore"):
        raise SystemExit(f"live-restore is not on in {hc}'s /etc/docker/daemon.json: {daemon}")
    allowed = allowed_addresses(hc)
    inside_target = args.inside_target or edge_address(hc, args.edge) + ":80"
    live = args.live or "notes-api-" + host_sh(hc, "slipway-proxy live notes-api").stdout.strip()
    before_containers = inner_containers(hc)

    stats = {"kept": Stats(), "new": Stats()}
    stop = threading.Event()
    paths = args.paths.split(",")
    threads = [threading.Thread(target=client, args=(kind, args.port, args.domain, paths, args.interval, stop,
                                                     stats[kind]), daemon=True)
               for kind in (["kept"] * args.kept_alive + ["new"] * args.new_connection
                            if "outside" in placements else [])]
    host, port = split_target(inside_target, allowed)
    cfg = inner_config(args, host, port, sample=True)
    if "inside" not in placements:
        cfg["kept"] = cfg["new"] = 0  # the sampler alone
    subprocess.run(["docker", "exec", "-i", hc, "sh", "-c", f"cat > {INNER_PATH}; rm -f {STOP_FILE}"],
                   input=INNER_CLIENT, text=True, check=True)
    inner = subprocess.Popen(["docker", "exec", hc, "python3", INNER_PATH, json.dumps(cfg)], stdout=subprocess.PIPE,
                             text=True)
    # Docker's embedded DNS as the edge sees it: the same sampler in the edge container's network namespace (an
    # edge on the host's network resolves nothing: then as the live colour sees it, whose app may still use it).
    args.edge_on_host = host_network(hc, args.edge)  # no published port: no DNAT rule to watch
    seen_from = live if args.edge_on_host else args.edge
    edge_pid = host_sh(hc, f"docker inspect -f '{{{{.State.Pid}}}}' {seen_from}").stdout.strip()
    probe = subprocess.Popen(["docker", "exec", hc, "nsenter", "-t", edge_pid, "-n", "python3", INNER_PATH,
                              json.dumps({**cfg, "kept": 0, "new": 0, "dns_only": True, "name": live})],
                             stdout=subprocess.PIPE, text=True)
    direct = start_direct(args, allowed)
    watchdog = threading.Timer(args.max_seconds, stop.set)
    watchdog.start()
    for t in threads:
        t.start()

    windows = [Window("quiet (no restart)", time.time())]
    marks = [{k: snapshot(v) for k, v in stats.items()}]
    time.sleep(args.pause)
    for i in range(1, args.restarts + 1):
        if stop.is_set():
            break
        windows[-1].end = time.time()
        windows.append(Window(f"restart {i}", windows[-1].end))
        marks.append({k: snapshot(v) for k, v in stats.items()})
        windows[-1].restart_seconds, windows[-1].containers_ok = restart_engine(hc, before_containers,
                                                                                args.down_seconds)
        print(f"restart {i}: {windows[-1].restart_seconds:.1f} s, {windows[-1].containers_ok}", file=sys.stderr)
        time.sleep(args.pause)
    windows[-1].end = time.time()
    marks.append({k: snapshot(v) for k, v in stats.items()})

    stop.set()
    watchdog.cancel()
    host_sh(hc, f"touch {STOP_FILE}")
    Path(args.direct_stop_file).touch()
    for t in threads:
        t.join(timeout=15)
    empty = '{"ok": {}, "fails": [], "changes": []}'
    result = json.loads(inner.communicate(timeout=60)[0] or empty)
    result["changes"] = sorted(result["changes"] + json.loads(probe.communicate(timeout=60)[0] or empty)["changes"])
    direct_result = json.loads(direct.communicate(timeout=60)[0]) if direct else None
    host_sh(hc, f"rm -f {INNER_PATH} {STOP_FILE}")
    Path(args.direct_stop_file).unlink(missing_ok=True)

    count_windows(windows, marks, {"inside": result if "inside" in placements else None, "direct": direct_result},
                  outside="outside" in placements)

    outside_names: dict[str, int] = {}
    for kind_stats in stats.values():
        for error, n in snapshot(kind_stats)[1].items():
            outside_names[error] = outside_names.get(error, 0) + n
    names = {"outside": outside_names, "inside": error_names(result)}
    if direct_result is not None:
        names["direct"] = error_names(direct_result)
    lines = report(args, windows, result["changes"], live, inside_target, names)
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.output).write_text(text, encoding="utf-8")
    failed = sum(c["failed"] for w in windows for c in w.counts.values())
    if args.results:
        requests = sum(c["requests"] for w in windows for c in w.counts.values())
        engine = f"{args.restarts} x stop, {args.down_seconds:g} s, start" if args.down_seconds else \
            f"{args.restarts} x `systemctl restart docker`"
        summary = [f"## Through Docker engine restarts: {args.title}", "",
                   f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {engine}, {args.pause:g} s apart, under "
                   f"{args.kept_alive} kept-alive + {args.new_connection} new-connection clients per placement "
                   f"({', '.join(placements)}): **{failed} failed of {requests}**. The table, every window and the "
                   f"sampled evidence: [{Path(args.output).name}]({Path(args.output).name})."]
        write_results(Path(args.results), "\n".join(summary), Path(args.output).stem)
    return 1 if failed or any(w.containers_ok and "CHANGED" in w.containers_ok for w in windows) else 0


def report(args: argparse.Namespace, windows: list[Window], changes: list[list[Any]], live: str,  # noqa: PLR0917
           inside_target: str, names: dict[str, dict[str, int]]) -> list[str]:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip()
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    where = {"outside": f"this machine -> 127.0.0.1:{args.port} -> {args.host_container}:{args.published_port} "
                        "(publish + DNAT) -> edge",
             "inside": f"inside {args.host_container} -> {inside_target} (no publish)",
             "direct": f"this machine -> {args.direct_target} (no publish)"}
    lines = [
        "# Edge traffic across Docker engine restarts",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {nproc} CPUs, commit {commit}, host container "
        f"{args.host_container} (live-restore on). {args.title}.",
        "",
        f"Load per placement: {args.kept_alive} kept-alive + {args.new_connection} new-connection clients, no "
        f"retries, one request per {args.interval:g} s per client at most, GET {args.paths.replace(',', ', ')} (Host "
        f"{args.domain}). `systemctl restart docker` inside the host {args.restarts} times, {args.pause:g} s apart; "
        "each window runs from its restart to the next one. Failed kinds: reset (reset, remote closed, broken pipe), "
        "timeout, refused, 5xx (HTTP status), other.",
        "",
        *[f"- {p}: {where[p]}" for p in dict.fromkeys(c.split()[0] for c in windows[0].counts)],
        "",
        "| window | placement | requests | failed | reset | timeout | refused | 5xx | other | restart s "
        f"| DNAT :{args.published_port} gone s | Docker DNS down s | {live} not UP s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    totals: dict[str, dict[str, int]] = {}
    for w in windows:
        dnat = "n/a" if args.edge_on_host else f"{durations(changes, w, 'dnat', lambda v: v != 'True'):.1f}"
        down = durations(changes, w, "servers", lambda v: live_not_up(v, live)) if args.socket else 0.0
        dns = durations(changes, w, "dns", lambda v: not v.startswith("rcode0/an") or v.endswith("/an0"))
        for placement, c in w.counts.items():
            total = totals.setdefault(placement, dict.fromkeys(c, 0))
            for k, v in c.items():
                total[k] += v
            lines.append(f"| {w.label} | {placement} | {c['requests']} | {c['failed']} | "
                         + " | ".join(str(c[k]) for k in KINDS)
                         + f" | {w.restart_seconds:.1f} | {dnat} | {dns:.1f} | {down:.1f} |")
    for placement, c in totals.items():
        lines.append(f"| **all** | {placement} | {c['requests']} | {c['failed']} | "
                     + " | ".join(str(c[k]) for k in KINDS) + " | | | | |")
    lines += ["", "Failures by error: " + "; ".join(
        f"{p}: " + (", ".join(f"{k} x{v}" for k, v in sorted(n.items())) or "none") for p, n in names.items()
        if f"{p} kept" in totals)]
    lines += ["", "Containers after each restart: " + "; ".join(
        f"{w.label}: {w.containers_ok}" for w in windows if w.containers_ok), ""]
    t0 = windows[0].start
    lines += ["Sampled inside the host every 0.1 s (t from the start of the run; each change): dnat / fwd-accept = "
              "the engine's nat DNAT and filter ACCEPT rules for the published port; servers = `show servers state` "
              "(name=addr/op state 2 UP/admin state, 0x20 resolution maint); dns = an A query for the live server "
              "to 127.0.0.11 from the edge's network namespace (rcode/answers, or the error).", "", "```"]
    lines += [f"{t - t0:7.2f} {key:12} {value}" for t, key, value in changes]
    lines += ["```"]
    return lines


if __name__ == "__main__":
    sys.exit(main())
