#!/usr/bin/env python3
"""Zero-downtime benchmark: continuous HTTP load through the edge proxy during consecutive rollouts.

Load: kept-alive clients (one connection each, reused) and new-connection clients (a connection per request),
all to the local host's published proxy port on 127.0.0.1 only, Host header = the service's domain. A client
never retries: every failed request is counted. Each client sends at most one request per --interval seconds, and
the whole run is bounded by --max-seconds.

Rollouts: the real playbooks (ansible-playbook playbooks/deploy.yml / rollback.yml -e env=local), timed whole,
including the failing ones (v3 health, v4 migration). Per-phase durations come from the host's history.jsonl.
The floor of a deploy without a migration is the new container's start-to-healthy time (from `docker run` to the
end of its first passing HEALTHCHECK, recorded by the host as start_to_healthy) plus the drain (until the old
colour has no sessions, then its graceful stop); the target is a whole deploy within 1.5x of it. Also timed: a
no-op deploy (target 2.5 s, issue 15) and a rollback to the kept colour (target 5 s).

    make demo-down && make demo                # a fresh local host: notes-api v2.0.0 live, v1.0.0 kept
    .venv/bin/python bench/rollout_bench.py    # prints the table, writes bench/results.md

The sequence needs v1.0.0 and v2.0.0 as the live and kept releases (as `make demo` leaves them, and as the run
itself ends): once another release has replaced one of them, v1.0.0 would need its migrations again, and an older
release cannot migrate a newer schema (its deploy fails in `migrate`, safely, and the bench reports it as
UNEXPECTED). The last part repeats the deploys with the sample's slow-start build (v2.0.0-slow, 5 s before it
listens), to show the ratio against a larger floor.
"""

# ruff: noqa: S603, S607 - fixed argument lists: docker and ansible-playbook on this machine
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slipway_core.contract import PHASES

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ["v1.0.0", "v2.0.0", "v3.0.0-badhealth", "v4.0.0-badmigration", "v2.0.0-slow"]
SLOW = "-slow"  # the sample's slow-start build: 5 s before it listens (STARTUP_DELAY), like a heavier service
# (kind, version, expected outcome). Starts from `make demo`'s state (v2 live, v1 kept): every release's image is
# live or kept from then on, so no deploy of v1/v2 needs a migration.
SEQUENCE: list[tuple[str, str, str]] = [
    ("deploy", "v2.0.0", "any"),
    ("deploy", "v1.0.0", "deployed"),
    ("deploy", "v2.0.0", "deployed"),
    ("deploy", "v3.0.0-badhealth", "failed"),
    ("deploy", "v4.0.0-badmigration", "failed"),
    ("rollback", "", "deployed"),
    ("rollback", "", "deployed"),
    ("deploy", "v2.0.0", "noop"),
    ("deploy", "v1.0.0", "deployed"),
    ("deploy", "v2.0.0", "deployed"),
    ("deploy", "v3.0.0-badhealth", "failed"),
    ("rollback", "", "deployed"),
    ("deploy", "v1.0.0", "noop"),
    # The same deploys with a slower-starting build, to show the ratio against a larger floor. v1.0.0 stays the
    # live or the kept release throughout (it could not migrate the newer schema), and the run ends as it began:
    # v2.0.0 live, v1.0.0 kept, so the bench can run again.
    ("deploy", "v2.0.0-slow", "deployed"),  # its first deploy runs its (no-op) migration: no floor
    ("deploy", "v1.0.0", "deployed"),
    ("deploy", "v2.0.0-slow", "deployed"),
    ("deploy", "v1.0.0", "deployed"),
    ("deploy", "v2.0.0-slow", "deployed"),
    ("deploy", "v1.0.0", "deployed"),
    ("deploy", "v2.0.0", "deployed"),  # neither live nor kept: its (no-op) migration runs again
]


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    non_2xx: int = 0
    conn_errors: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    # Each failed request: when it ended (time.time()) and what it was, to tell which rollout it fell in.
    failures: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, status: int | None, error: str = "") -> None:
        with self.lock:
            self.requests += 1
            if status is None:
                self.conn_errors += 1
            else:
                self.latencies.append(seconds)
                if 200 <= status < 300:
                    return
                self.non_2xx += 1
                error = f"HTTP {status}"
            self.errors[error] = self.errors.get(error, 0) + 1
            self.failures.append((time.time(), error))


def when_failed(failures: Sequence[tuple[float, str]], windows: Sequence[tuple[str, float, float]]) -> list[str]:
    """Where each failed request fell: in a rollout's window (label, started, ended: time.time()), how far into
    it, or between rollouts, after which one. One line per failure, in time order."""
    lines = []
    for at, error in sorted(failures):
        clock = time.strftime("%H:%M:%S", time.gmtime(at)) + f".{int(at * 10) % 10}"
        inside = [(label, start) for label, start, end in windows if start <= at <= end]
        before = [(label, end) for label, _, end in windows if end < at]
        if inside:
            where = f"during {inside[0][0]}, {at - inside[0][1]:.1f} s after it started"
        elif before:
            where = f"between rollouts, {at - before[-1][1]:.1f} s after {before[-1][0]} ended"
        else:
            where = "before the first rollout"
        lines.append(f"{clock} {error}: {where}")
    return lines


def client(kind: str, port: int, domain: str, paths: list[str], interval: float,  # noqa: PLR0917
           stop: threading.Event, stats: Stats) -> None:
    conn: http.client.HTTPConnection | None = None
    i = 0
    while not stop.is_set():
        path = paths[i % len(paths)]
        i += 1
        start = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path, headers={"Host": domain})
            resp = conn.getresponse()
            resp.read()
            stats.add(time.monotonic() - start, resp.status)
            if kind == "new" or resp.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as err:
            stats.add(time.monotonic() - start, None, type(err).__name__)
            if conn is not None:
                conn.close()
            conn = None
        spent = time.monotonic() - start
        if spent < interval:
            stop.wait(interval - spent)
    if conn is not None:
        conn.close()


# bench/results.md is this script's; another bench keeps a section of its own in it, after its marker line, which a
# rerun of this script keeps (and a rerun of that bench replaces): one page of figures.
SECTION = "<!-- section: "


def write_results(path: Path, text: str, section: str = "") -> None:
    """Write `text` as the page (section ""), keeping every other bench's section; or replace `section` in it."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    head, *parts = old.split(SECTION)
    sections = {part.split(" -->", 1)[0]: SECTION + part.rstrip("\n") for part in parts}
    if section:
        sections[section] = f"{SECTION}{section} -->\n{text.rstrip()}"
    else:
        head = text
    body = [head.rstrip("\n"), *(sections[k] for k in sorted(sections))]
    path.write_text("\n\n".join(body) + "\n", encoding="utf-8")


def host_sh(container: str, command: str) -> str:
    return subprocess.run(["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True,
                          check=False).stdout


def ensure_images(container: str, image: str) -> None:
    missing = [f"{image}:{tag}" for tag in IMAGES
               if subprocess.run(["docker", "exec", container, "docker", "image", "inspect", f"{image}:{tag}"],
                                 capture_output=True, check=False).returncode != 0]
    if not missing:
        return
    print(f"loading {' '.join(missing)} into {container}", file=sys.stderr)
    save = subprocess.Popen(["docker", "save", *missing], stdout=subprocess.PIPE)
    subprocess.run(["docker", "exec", "-i", container, "docker", "load"], stdin=save.stdout, check=True,
                   capture_output=True)
    save.wait()


def playbook(args: argparse.Namespace, name: str, *extra: str) -> tuple[int, float, str]:
    cmd = [args.ansible_playbook, *(["-i", args.inventory] if args.inventory else []),
           f"playbooks/{name}.yml", "-e", f"env={args.env}", "-e", f"service={args.service}", *extra]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, "ANSIBLE_NOCOLOR": "1"})
    return proc.returncode, time.monotonic() - start, proc.stdout + proc.stderr


def last_history(args: argparse.Namespace) -> dict[str, Any]:
    out = host_sh(args.host_container, f"tail -n 1 /var/lib/slipway/services/{args.service}/history.jsonl")
    try:
        line: dict[str, Any] = json.loads(out)
        return line
    except ValueError:
        return {}


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(step: tuple[str, str, str], run: tuple[int, float, str], new_line: dict[str, Any]) -> dict[str, Any]:
    """One rollout's table row: step = (kind, version, expected result), run = (rc, wall, output), new_line = the
    history line it wrote (empty for a no-op)."""
    (kind, version, expect), (rc, wall, out) = step, run
    result = "noop" if rc == 0 and not new_line else ("deployed" if rc == 0 else "failed")
    durations = new_line.get("durations", {})
    boot = new_line.get("start_to_healthy")
    if boot is None and result == "deployed":  # a host program from before start_to_healthy was recorded
        boot = durations.get("start", 0) + durations.get("health", 0)
    floor = None
    if kind == "deploy" and result == "deployed" and "migrate" not in durations:
        floor = boot + durations.get("drain", 0)
    return {"kind": kind, "version": version or new_line.get("version", ""), "expect": expect, "result": result,
            "rc": rc, "wall": wall, "durations": durations, "floor": floor, "boot": boot,
            "phase": new_line.get("failed_phase", ""), "tail": out[-1500:] if rc not in (0, 2) else ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="local")
    parser.add_argument("--inventory", default="", help="inventory file (default: ansible.cfg's)")
    parser.add_argument("--host-container", default="slipway-local")
    parser.add_argument("--port", type=int, default=8080, help="the proxy's port on 127.0.0.1")
    parser.add_argument("--service", default="notes-api")
    parser.add_argument("--domain", default="notes.localhost")
    parser.add_argument("--image", default="slipway/notes-api")
    parser.add_argument("--kept-alive", type=int, default=4)
    parser.add_argument("--new-connection", type=int, default=4)
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between a client's requests")
    parser.add_argument("--max-seconds", type=float, default=1200)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results.md"))
    parser.add_argument("--ansible-playbook", default=str(ROOT / ".venv" / "bin" / "ansible-playbook"))
    args = parser.parse_args()

    ensure_images(args.host_container, args.image)
    stats = Stats()
    stop = threading.Event()
    paths = ["/version", "/health", "/notes?limit=5"]
    threads = [threading.Thread(target=client, args=(kind, args.port, args.domain, paths, args.interval, stop, stats),
                                daemon=True)
               for kind in ["kept"] * args.kept_alive + ["new"] * args.new_connection]
    watchdog = threading.Timer(args.max_seconds, stop.set)
    watchdog.start()
    for t in threads:
        t.start()
    time.sleep(2)
    rows: list[dict[str, Any]] = []
    for kind, version, expect in SEQUENCE:
        if stop.is_set():
            break
        before, started = last_history(args), time.time()
        rc, wall, out = (playbook(args, "deploy", "-e", f"version={version}") if kind == "deploy"
                         else playbook(args, "rollback"))
        ended, after = time.time(), last_history(args)
        new_line = after if after != before else {}
        rows.append(row((kind, version, expect), (rc, wall, out), new_line))
        rows[-1]["window"] = (f"#{len(rows)} ({kind} {version})", started, ended)
        print(f"{kind:8} {rows[-1]['version']:22} {rows[-1]['result']:8} {wall:6.1f}s "
              + " ".join(f"{k}={v:.1f}" for k, v in rows[-1]["durations"].items()), file=sys.stderr)
        time.sleep(1)
    # What any ansible-playbook run pays under the same load: the preflight alone (one controller task, no host).
    baseline = [playbook(args, "preflight")[1] for _ in range(3) if not stop.is_set()]
    time.sleep(2)
    stop.set()
    watchdog.cancel()
    for t in threads:
        t.join(timeout=15)

    lines = report(args, stats, rows, baseline)
    text = "\n".join(lines) + "\n"
    print(text)
    write_results(Path(args.output), text)
    bad = [r for r in rows if r["expect"] != "any" and r["result"] != r["expect"]]
    return 1 if bad or stats.non_2xx or stats.conn_errors else 0


def report(args: argparse.Namespace, stats: Stats, rows: list[dict[str, Any]], baseline: list[float]) -> list[str]:
    phases = [p for p in PHASES if p not in ("preflight", "unlock")]
    lines = [
        "# Rollout benchmark",
        "",
        f"Load: {args.kept_alive} kept-alive + {args.new_connection} new-connection clients, no retries, one request "
        f"per {args.interval:g} s per client at most, GET /version, /health, /notes through the edge proxy "
        f"(127.0.0.1:{args.port}, Host {args.domain}). Rollouts: the playbooks, timed whole (ansible-playbook "
        "start to exit).",
        "",
        "| requests | non-2xx | connection errors | p50 latency | p99 latency |",
        "|---:|---:|---:|---:|---:|",
        f"| {stats.requests} | {stats.non_2xx} | {stats.conn_errors} | {pct(stats.latencies, 0.5) * 1000:.1f} ms "
        f"| {pct(stats.latencies, 0.99) * 1000:.1f} ms |",
        "",
    ]
    if stats.errors:
        lines += ["Errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(stats.errors.items())), ""]
        lines += ["When they failed (UTC):", ""]
        lines += [f"- {line}" for line in when_failed(stats.failures, [r["window"] for r in rows if "window" in r])]
        lines += [""]
    lines += ["Phases are the host's (slipway-release, contract.PHASES); `start` ends when the container is started,"
              " and `health` counts only the wait left when the steps-left call arrives (the container boots while the"
              " controller moves on)."
              " start->healthy is the container's own time from `docker run` to its first passing HEALTHCHECK;"
              " floor = start->healthy + drain.", ""]
    lines += ["| # | rollout | version | result | wall s | " + " | ".join(phases)
              + " | start->healthy | floor s | wall/floor |",
              "|---:|---|---|---|---:|" + "---:|" * len(phases) + "---:|---:|---:|"]
    for i, r in enumerate(rows, 1):
        cells = [f"{r['durations'][p]:.2f}" if p in r["durations"] else "" for p in phases]
        boot = f"{r['boot']:.2f}" if r.get("boot") is not None else ""
        floor = f"{r['floor']:.2f}" if r["floor"] else ""
        ratio = f"{r['wall'] / r['floor']:.2f}" if r["floor"] else ""
        result = r["result"] + (f" ({r['phase']})" if r["phase"] else "")
        lines.append(f"| {i} | {r['kind']} | {r['version']} | {result} | {r['wall']:.2f} | " + " | ".join(cells)
                     + f" | {boot} | {floor} | {ratio} |")
    plain = [r for r in rows if r["floor"]]
    noop = [r["wall"] for r in rows if r["result"] == "noop"]
    back = [r["wall"] for r in rows if r["kind"] == "rollback" and r["result"] == "deployed"]
    lines.append("")
    for label, group in (("sample build", [r for r in plain if SLOW not in r["version"]]),
                         ("slow-start build", [r for r in plain if SLOW in r["version"]])):
        if not group:
            continue
        ratios = [r["wall"] / r["floor"] for r in group]
        program = [(r["durations"].get("lock", 0) + r["durations"].get("skip-check", 0) + r["boot"]
                    + r["durations"].get("switch", 0) + r["durations"].get("drain", 0)
                    + r["durations"].get("record", 0)) / r["floor"] for r in group]
        lines.append(f"- Deploy of an image already on the host, no migration, {label}: wall "
                     f"{statistics.median([r['wall'] for r in group]):.1f} s (median of {len(group)}), floor "
                     f"{statistics.median([r['floor'] for r in group]):.1f} s, wall/floor median "
                     f"{statistics.median(ratios):.2f} (max {max(ratios):.2f}; target <= 1.5); host-side rollout "
                     f"alone / floor median {statistics.median(program):.2f}.")
    if plain:
        over = statistics.median([r["wall"] - r["floor"] for r in plain])
        lines.append(f"- Time beyond the floor (wall - floor), all of them: median {over:.1f} s, about the same for "
                     f"both builds; wall/floor <= 1.5 needs a floor of at least {2 * over:.1f} s.")
    if baseline:
        lines.append(f"- `ansible-playbook playbooks/preflight.yml` alone (one controller task, no host touched), "
                     f"under the same load: {', '.join(f'{w:.1f}' for w in baseline)} s: the part of the time beyond "
                     "the floor that any ansible-playbook run pays.")
    if noop:
        lines.append(f"- No-op deploy: {', '.join(f'{w:.1f}' for w in noop)} s (target <= 2.5).")
    if back:
        lines.append(f"- Rollback to the kept colour: {', '.join(f'{w:.1f}' for w in back)} s (target <= 5).")
    unexpected = [f"#{i} {r['kind']} {r['version']}: {r['result']} (expected {r['expect']})"
                  for i, r in enumerate(rows, 1) if r["expect"] != "any" and r["result"] != r["expect"]]
    if unexpected:
        lines.append("- UNEXPECTED: " + "; ".join(unexpected))
    return lines


if __name__ == "__main__":
    sys.exit(main())
