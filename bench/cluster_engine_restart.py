#!/usr/bin/env python3
"""Traffic through the cluster demo's edge while one app host's Docker engine restarts (live-restore on).

The edge (slipway-dc-edge) reaches each app host's colours at the ports the app host publishes on its private
address (docs/topology.md, "Where an app host's colour answers"). A restart of that host's engine keeps its
containers running (live-restore) but deletes and re-adds the engine's DNAT rules for those ports, so for a moment
the edge's connections to that host are refused. This bench measures what a client of the edge sees meanwhile:

  load     4 kept-alive + 4 new-connection clients (rollout_bench's `client`, no retries) at 127.0.0.1:--port (the
           edge's port 80 published on this machine), GET /version, /health, /notes?limit=5
  restarts `systemctl restart docker` in --host, --restarts times, --pause seconds apart, after a quiet window
  sampler  every 0.25 s the edge's `show servers state` (its runtime socket): how long the restarted host's servers
           of the live colour were not UP; after each restart, every container of that host must run with the
           start time it had (live-restore)

    make demo-cluster && .venv/bin/python bench/cluster_engine_restart.py   # table; bench/cluster_engine_restart.md

Traffic goes only to 127.0.0.1 (the demo's published edge port).
"""

# ruff: noqa: S603, S607 - fixed argument lists: docker on this machine
from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rollout_bench import Stats, client

ROOT = Path(__file__).resolve().parent.parent
PATHS = ["/version", "/health", "/notes?limit=5"]
UP = "2"  # HAProxy's srv_op_state for a server that is UP
STATE_PROBE = (
    "import socket,sys\n"
    "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'show servers state\\n')\n"
    "out=b''\n"
    "while True:\n"
    "    d=s.recv(65536)\n"
    "    if not d: break\n"
    "    out+=d\n"
    "sys.stdout.write(out.decode())\n"
)


def host_index(host: str, app_hosts: list[str]) -> int:
    """The restarted host's index among the app hosts: the suffix of its servers' names on another host's edge."""
    return app_hosts.index(host) + 1


def server_states(state: str, suffix: str) -> dict[str, str]:
    """The operational state of each server named `<container>.<suffix>` (the restarted host's) in HAProxy's `show
    servers state` answer: one line per server, fields be_id be_name srv_id srv_name srv_addr srv_op_state ..."""
    found = {}
    for line in state.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[0].isdigit() and fields[3].endswith(f".{suffix}"):
            found[f"{fields[1]}/{fields[3]}"] = fields[5]
    return found


def not_up(states: dict[str, str], watched: set[str]) -> bool:
    """Whether a watched server (UP when the bench began: the live colour's) is not UP now, or gone."""
    return any(states.get(server) != UP for server in watched)


@dataclass
class Window:
    name: str
    requests: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    restart_s: float = 0.0
    not_up_s: float = 0.0
    restarted_containers: int = 0


def counts(stats: Stats) -> tuple[int, int, dict[str, int]]:
    with stats.lock:
        return stats.requests, stats.conn_errors + stats.non_2xx, dict(stats.errors)


def difference(before: tuple[int, int, dict[str, int]], after: tuple[int, int, dict[str, int]]) -> Window:
    errors = {k: v - before[2].get(k, 0) for k, v in after[2].items() if v - before[2].get(k, 0)}
    return Window("", after[0] - before[0], after[1] - before[1], errors)


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=timeout)


def started_at(host: str) -> dict[str, str]:
    """Each container of `host`'s engine: its start time."""
    out = docker("exec", host, "sh", "-c", "docker ps -q | xargs -r docker inspect -f '{{.Name}} {{.State.StartedAt}}'")
    return dict(line.lstrip("/").split(" ", 1) for line in out.stdout.splitlines() if " " in line)


class Sampler(threading.Thread):
    """The edge's server states every `period` seconds: (time, whether the host's servers that were UP at the
    first sample, the live colour's, were not all UP)."""

    def __init__(self, edge: str, socket_path: str, suffix: str, period: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.edge, self.socket_path, self.suffix, self.period = edge, socket_path, suffix, period
        self.samples: list[tuple[float, bool]] = []
        self.watched: set[str] = set()
        self.stop = threading.Event()

    def read(self) -> dict[str, str]:
        state = docker("exec", self.edge, "python3", "-c", STATE_PROBE, self.socket_path, timeout=10).stdout
        return server_states(state, self.suffix)

    def run(self) -> None:
        self.watched = {server for server, op in self.read().items() if op == UP}
        while not self.stop.is_set():
            self.samples.append((time.monotonic(), not_up(self.read(), self.watched)))
            self.stop.wait(self.period)


def seconds_not_up(samples: list[tuple[float, bool]], start: float, end: float) -> float:
    """The time between `start` and `end` the samples found the servers not UP (each sample until the next)."""
    total = 0.0
    inside = [(t, bad) for t, bad in samples if start <= t <= end]
    for (t, bad), (t_next, _) in zip(inside, [*inside[1:], (end, False)], strict=True):
        if bad:
            total += t_next - t
    return total


def table(windows: list[Window]) -> list[str]:
    lines = ["| window | requests | failed | errors | restart s | host's servers not UP s | containers restarted |",
             "|---|---:|---:|---|---:|---:|---:|"]
    for w in windows:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(w.errors.items())) or "-"
        lines.append(f"| {w.name} | {w.requests} | {w.failed} | {errors} | {w.restart_s:.1f} | {w.not_up_s:.1f} | "
                     f"{w.restarted_containers} |")
    total = Window("**all**", sum(w.requests for w in windows), sum(w.failed for w in windows))
    lines.append(f"| {total.name} | {total.requests} | {total.failed} | | | | "
                 f"{sum(w.restarted_containers for w in windows)} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8081, help="the demo edge's port on 127.0.0.1")
    parser.add_argument("--domain", default="notes.localhost")
    parser.add_argument("--edge", default="slipway-dc-edge")
    parser.add_argument("--host", default="slipway-dc-app-2", help="the app host whose engine restarts")
    parser.add_argument("--app-hosts", default="slipway-dc-app-1,slipway-dc-app-2",
                        help="the environment's app hosts in inventory order (the servers' suffixes)")
    parser.add_argument("--socket", default="/run/slipway/haproxy/admin.sock", help="the edge's runtime socket")
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--pause", type=float, default=15.0)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "cluster_engine_restart.md")
    args = parser.parse_args()

    stats, stop = Stats(), threading.Event()
    clients = [threading.Thread(target=client, args=(kind, args.port, args.domain, PATHS, args.interval, stop, stats),
                                daemon=True) for kind in ["kept"] * 4 + ["new"] * 4]
    sampler = Sampler(args.edge, args.socket, str(host_index(args.host, args.app_hosts.split(","))))
    for thread in [*clients, sampler]:
        thread.start()
    time.sleep(2)
    if not sampler.watched:
        print(f"the edge {args.edge} has no UP server on {args.host}: is `make demo-cluster` up?", file=sys.stderr)
        return 1
    windows: list[Window] = []
    before = counts(stats)
    start = time.monotonic()
    time.sleep(args.pause)
    quiet = difference(before, counts(stats))
    quiet.name, quiet.not_up_s = "quiet (no restart)", seconds_not_up(sampler.samples, start, time.monotonic())
    windows.append(quiet)
    for n in range(1, args.restarts + 1):
        containers = started_at(args.host)
        before, start = counts(stats), time.monotonic()
        restart = docker("exec", args.host, "systemctl", "restart", "docker")
        restart_s = time.monotonic() - start
        if restart.returncode != 0:
            print(f"systemctl restart docker failed in {args.host}: {restart.stderr}", file=sys.stderr)
            return 1
        time.sleep(max(0.0, args.pause - restart_s))
        after = started_at(args.host)
        window = difference(before, counts(stats))
        window.name, window.restart_s = f"restart {n}", restart_s
        window.not_up_s = seconds_not_up(sampler.samples, start, time.monotonic())
        window.restarted_containers = sum(1 for name, at in containers.items() if after.get(name) != at)
        windows.append(window)
    stop.set()
    sampler.stop.set()
    for thread in clients:
        thread.join(timeout=15)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    head = [
        "# Cluster edge traffic across an app host's Docker engine restart",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}, `make demo-cluster` "
        f"(edge {args.edge}, {args.host}'s engine restarted; live-restore on). Load: 4 kept-alive + 4 new-connection "
        f"clients at 127.0.0.1:{args.port}, no retries, one request per {args.interval} s per client at most. "
        f"`systemctl restart docker` in {args.host} {args.restarts} times, {args.pause:g} s apart; each window "
        "runs from its restart to the next one. Not UP: the restarted host's servers of the live colour, sampled "
        "every 0.25 s on the edge's runtime socket.",
        "",
    ]
    text = "\n".join([*head, *table(windows)]) + "\n"
    print(text)
    args.out.write_text(text, encoding="utf-8")
    return 0 if all(w.failed == 0 for w in windows) else 1


if __name__ == "__main__":
    sys.exit(main())
