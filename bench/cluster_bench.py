#!/usr/bin/env python3
"""Cluster benchmark (issue 12): rollouts across the demo cluster under continuous load through its edge, over SSH
and over the Docker connection, beside the same deploys on one VM, in one run.

Environments, all `demo_cluster` (the same services registry, images and secrets: the same release), each an
inventory variant written into a temporary directory from inventories/demo_cluster:
- `cluster, ssh`: the demo's own inventory (make demo-cluster): edge, two app hosts (one Debian 13), data host, over
  SSH as `deploy` with sudo, host keys pinned, the repository's ansible.cfg (pipelining, ControlPersist);
- `cluster, ssh, no ControlPersist`: the same, a new SSH connection for every task (ANSIBLE_SSH_ARGS without
  ControlMaster), to show what connection reuse saves (pipelining is on in every row: deploy.yml's plays set it);
- `cluster, docker`: the same four hosts through community.docker.docker (`docker exec` as root), no SSH at all;
- `cluster, ssh, app-2 fails`: the SSH variant with a host_vars file giving slipway-dc-app-2 alone FAIL_HEALTH (the
  Molecule scenario's way, ops_run.failing_health_services): its gate fails, app-1's passes, nothing may switch;
- `one VM, ssh` / `one VM, ssh, no ControlPersist` / `one VM, docker`: one more host container, slipway-dc-solo
  (Debian 12, 10.214.0.20, edge on 127.0.0.1:8082), holding every role: the one-host path of the same playbooks.
  Brought up (scripts/demo_cluster.py up) and provisioned over SSH by this bench the first time; `make
  demo-cluster-down` removes it.
Before the load: the CPU each deploy costs the machine (idle_cpu: /proc/stat around eight SSH deploys, cluster and
one VM interleaved, less the idle hosts' baseline) and the controller's part of it (the bench's children: getrusage),
the rest being the hosts' side: on a machine whose cores every host shares, what the cluster's hosts do twice.
Load: rollout_bench's clients (imported), the same number on each edge for the whole run, no retries.
Rollouts: ansible-playbook playbooks/deploy.yml -i <variant> -e env=demo_cluster, timed whole, facts in memory (as
slipway runs them). Deploys alternate v1.0.0 and v2.0.0 (both live or kept: no migration), interleaved across
environment and transport so machine load spreads over all of them. Per-phase times come from the app hosts'
history.jsonl (across app hosts: the slowest host's time of each phase).

    make demo-cluster                          # or let the bench run it when the cluster is absent
    .venv/bin/python bench/cluster_bench.py    # prints the table, writes bench/cluster-results.md
"""

# ruff: noqa: S607 - fixed argument lists: docker and make
from __future__ import annotations

import argparse
import configparser
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import demo_cluster  # noqa: E402 - scripts/, on sys.path from the line above
import ops_run  # noqa: E402
from rollout_bench import Stats, client, host_sh, pct, row, when_failed, write_results  # noqa: E402 - bench/, this script's

from slipway_core.contract import PHASES  # noqa: E402

SERVICE = "notes-api"
DOMAIN = "notes.localhost"
ENV = demo_cluster.ENV
SOLO = demo_cluster.SOLO
EDGE_HOST = "slipway-dc-edge"
SOLO_ADDRESS = "10.214.0.20"
SOLO_PORT = 8082
APPS = ("slipway-dc-app-1", "slipway-dc-app-2")
FAILING = "slipway-dc-app-2"
DOCKER_VARS = {"ansible_connection": "community.docker.docker", "ansible_user": "root"}
# ansible.cfg's ssh_args without connection reuse: a new SSH connection for every task.
NO_CP = "ssh, no ControlPersist"
NO_CONTROL_PERSIST = {"ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ServerAliveInterval=15"}


@dataclass(frozen=True)
class Target:
    """One environment variant: where its inventory is, which containers hold its app hosts, its edge's port."""

    label: str  # "cluster" or "one VM"
    transport: str  # "ssh" or "docker"
    inventory: Path
    apps: tuple[str, ...]
    port: int
    env: Mapping[str, str] = field(default_factory=dict)  # for ansible-playbook, on top of ops_run's


def variant(base: Path, dest: Path, *, docker: bool = False, hosts: dict[str, str] | None = None,
            host_vars: dict[str, dict[str, Any]] | None = None) -> Path:
    """A copy of the inventory directory `base` (links resolved, known_hosts kept): with `hosts` (name -> address)
    as the environment's only host, through the Docker connection (`docker`), with `host_vars` files."""
    shutil.copytree(base, dest)
    path = dest / "hosts.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    group = data["all"]["children"][ENV]
    if hosts is not None:
        group.pop("children", None)
        group["hosts"] = {name: {"ansible_host": address} for name, address in hosts.items()}
    if docker:
        for hostvars in _host_entries(group):
            hostvars["ansible_host"] = hostvars["__name"]
        group["vars"] = {**{k: v for k, v in group["vars"].items() if k != "ansible_ssh_common_args"}, **DOCKER_VARS}
    for hostvars in _host_entries(group):
        hostvars.pop("__name", None)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    for name, values in (host_vars or {}).items():
        (dest / "host_vars").mkdir(exist_ok=True)
        (dest / "host_vars" / f"{name}.yml").write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


def _host_entries(group: dict[str, Any]) -> list[dict[str, Any]]:
    """Every host entry of the environment's group (a host listed in two role groups twice), each dict made and
    marked with its name under "__name" (variant() removes the mark)."""
    entries = []
    for holder in [group, *(group.get("children") or {}).values()]:
        hosts = holder.get("hosts") or {}
        for name in hosts:
            hosts[name] = hosts[name] or {}
            hosts[name]["__name"] = name
            entries.append(hosts[name])
    return entries


def failing_app_2(base: Path) -> dict[str, dict[str, Any]]:
    """The host_vars that make the next rollout fail its health gate on slipway-dc-app-2 only."""
    main = yaml.safe_load((base / "group_vars" / ENV / "main.yml").read_text(encoding="utf-8"))
    return {FAILING: {"slipway_services": ops_run.failing_health_services(main["slipway_services"], SERVICE)}}


def playbook(inventory: Path, name: str, *extra: str, env: Mapping[str, str] | None = None) -> tuple[int, float, str]:
    start = time.monotonic()
    done = ops_run.playbook(ROOT, demo_cluster.KEY, f"playbooks/{name}.yml", "-i", str(inventory), "-e",
                            f"env={ENV}", *extra,
                            extra_env={"ANSIBLE_CACHE_PLUGIN": "ansible.builtin.memory", **(env or {})}, timeout=900)
    return done.returncode, time.monotonic() - start, done.stdout + done.stderr


def last_lines(apps: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each app host's last history line of the service ({} for a host without one)."""
    found = {}
    for app in apps:
        text = host_sh(app, f"tail -n 1 /var/lib/slipway/services/{SERVICE}/history.jsonl").strip()
        found[app] = json.loads(text) if text else {}
    return found


def merged(lines: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The app hosts' history lines of one rollout as one: each phase the slowest host's time, the start-to-healthy
    the slowest host's, the failed phase any host's; {} when no host wrote a line."""
    present = [line for line in lines.values() if line]
    if not present:
        return {}
    durations: dict[str, float] = {}
    for line in present:
        for phase, seconds in (line.get("durations") or {}).items():
            durations[phase] = max(durations.get(phase, 0.0), float(seconds))
    boots = [float(line["start_to_healthy"]) for line in present if line.get("start_to_healthy") is not None]
    failed = next((line["failed_phase"] for line in present if line.get("failed_phase")), "")
    return {"version": present[0].get("version", ""), "durations": durations,
            "start_to_healthy": max(boots) if boots else None, "failed_phase": failed,
            "hosts": len(present)}


def answers(port: int) -> bool:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/version", headers={"Host": DOMAIN})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - loopback, a fixed URL
            return bool(resp.status == 200)
    except OSError:
        return False


def ensure_cluster() -> None:
    """The demo cluster up and answering through its edge, else `make demo-cluster`."""
    if answers(demo_cluster.HTTP_PORT) and (demo_cluster.INVENTORY / "known_hosts").exists():
        return
    print("the demo cluster is absent: make demo-cluster", file=sys.stderr)
    subprocess.run(["make", "demo-cluster"], cwd=ROOT, check=True)


def ensure_solo(ssh_inventory: Path) -> None:
    """The one-VM host up (its keys pinned into the variant's known_hosts) and, the first time, provisioned and at
    the cluster's releases (v1.0.0 deployed, then v2.0.0: v2 live, v1 kept)."""
    demo_cluster.up(ssh_inventory.parent, ENV, http_port=SOLO_PORT)
    state = host_sh(SOLO, f"cat /var/lib/slipway/services/{SERVICE}/state.json 2>/dev/null")
    if state and answers(SOLO_PORT):
        return
    for name, extra in (("infra", ()), ("deploy", ("-e", f"service={SERVICE}", "-e", "version=v1.0.0")),
                        ("deploy", ("-e", f"service={SERVICE}", "-e", "version=v2.0.0"))):
        rc, wall, out = playbook(ssh_inventory, name, *extra)
        print(f"one VM set-up: {name} {' '.join(extra[-1:])}: exit {rc} in {wall:.0f}s", file=sys.stderr)
        if rc != 0:
            raise SystemExit(f"setting up {SOLO} failed:\n{out[-3000:]}")


# (target key, version, expected result); target keys: see targets(). Starts from make demo-cluster's state (v2.0.0
# live, v1.0.0 kept) on both environments and ends there. Each pair of deploys on one environment moves it v1, v2.
SEQUENCE: list[tuple[str, str, str]] = [
    ("cluster-ssh", "v2.0.0", "any"),  # a no-op, or back to v2.0.0 after an interrupted run
    ("solo-ssh", "v2.0.0", "any"),
    ("cluster-ssh-app2-fails", "v2.0.0", "failed"),
    ("cluster-ssh", "v1.0.0", "deployed"), ("solo-ssh", "v1.0.0", "deployed"),
    ("cluster-docker", "v2.0.0", "deployed"), ("solo-docker", "v2.0.0", "deployed"),
    ("cluster-docker", "v1.0.0", "deployed"), ("solo-docker", "v1.0.0", "deployed"),
    ("cluster-ssh", "v2.0.0", "deployed"), ("solo-ssh", "v2.0.0", "deployed"),
    ("cluster-ssh", "v1.0.0", "deployed"), ("solo-ssh", "v1.0.0", "deployed"),
    ("cluster-docker", "v2.0.0", "deployed"), ("solo-docker", "v2.0.0", "deployed"),
    ("cluster-docker", "v1.0.0", "deployed"), ("solo-docker", "v1.0.0", "deployed"),
    ("cluster-ssh", "v2.0.0", "deployed"), ("solo-ssh", "v2.0.0", "deployed"),
    ("cluster-ssh-no-cp", "v1.0.0", "deployed"), ("solo-ssh-no-cp", "v1.0.0", "deployed"),
    ("cluster-ssh-no-cp", "v2.0.0", "deployed"), ("solo-ssh-no-cp", "v2.0.0", "deployed"),
    # Two more SSH rounds: the ratio is of these, and a median of four moved by 0.1x from one run to the next.
    ("cluster-ssh", "v1.0.0", "deployed"), ("solo-ssh", "v1.0.0", "deployed"),
    ("cluster-ssh", "v2.0.0", "deployed"), ("solo-ssh", "v2.0.0", "deployed"),
    ("cluster-ssh", "v1.0.0", "deployed"), ("solo-ssh", "v1.0.0", "deployed"),
    ("cluster-ssh", "v2.0.0", "deployed"), ("solo-ssh", "v2.0.0", "deployed"),
    ("cluster-ssh", "v2.0.0", "noop"), ("cluster-docker", "v2.0.0", "noop"),
    ("solo-ssh", "v2.0.0", "noop"), ("solo-docker", "v2.0.0", "noop"),
]


def targets(tmp: Path) -> dict[str, Target]:
    base = demo_cluster.INVENTORY
    solo_ssh = variant(base, tmp / "solo-ssh", hosts={SOLO: SOLO_ADDRESS})
    ensure_solo(solo_ssh)
    port = demo_cluster.HTTP_PORT
    return {
        "cluster-ssh": Target("cluster", "ssh", base / "hosts.yml", APPS, port),
        "cluster-docker": Target("cluster", "docker", variant(base, tmp / "cluster-docker", docker=True), APPS, port),
        "cluster-ssh-app2-fails": Target("cluster", "ssh, app-2 fails",
                                         variant(base, tmp / "cluster-fails", host_vars=failing_app_2(base)), APPS,
                                         port),
        "cluster-ssh-no-cp": Target("cluster", NO_CP, base / "hosts.yml", APPS, port, NO_CONTROL_PERSIST),
        "solo-ssh": Target("one VM", "ssh", solo_ssh, (SOLO,), SOLO_PORT),
        "solo-ssh-no-cp": Target("one VM", NO_CP, solo_ssh, (SOLO,), SOLO_PORT, NO_CONTROL_PERSIST),
        "solo-docker": Target("one VM", "docker", variant(solo_ssh.parent, tmp / "solo-docker", docker=True),
                              (SOLO,), SOLO_PORT),
    }


def start_load(ports: Sequence[int], args: argparse.Namespace,
               stop: threading.Event) -> tuple[dict[int, Stats], list[threading.Thread]]:
    stats = {port: Stats() for port in ports}
    paths = ["/version", "/health", "/notes?limit=5"]
    threads = [threading.Thread(target=client, args=(kind, port, DOMAIN, paths, args.interval, stop, stats[port]),
                                daemon=True)
               for port in ports for kind in ["kept"] * args.kept_alive + ["new"] * args.new_connection]
    for thread in threads:
        thread.start()
    return stats, threads


def others_running() -> list[str]:
    """The containers on this machine that are not this bench's (other engineers' Molecule hosts, the demo)."""
    names = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True,
                           check=False).stdout.split()
    return sorted(name for name in names if not name.startswith("slipway-dc-"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kept-alive", type=int, default=4, help="kept-alive clients per edge")
    parser.add_argument("--new-connection", type=int, default=4, help="new-connection clients per edge")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between a client's requests")
    parser.add_argument("--max-seconds", type=float, default=2400)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "cluster-results.md")
    args = parser.parse_args()

    ensure_cluster()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before, others = os.getloadavg(), others_running()
    began = time.time()
    with tempfile.TemporaryDirectory(prefix="dc-bench-") as tmp:
        found = targets(Path(tmp))
        idle = idle_cpu(found)
        stop = threading.Event()
        stats, threads = start_load((demo_cluster.HTTP_PORT, SOLO_PORT), args, stop)
        watchdog = threading.Timer(args.max_seconds, stop.set)
        watchdog.start()
        time.sleep(2)
        rows = run_sequence(found, stop)
        time.sleep(2)
        stop.set()
        watchdog.cancel()
        for thread in threads:
            thread.join(timeout=15)
    context: dict[str, Any] = {"started": started, "load_before": load_before, "load_after": os.getloadavg(),
                               "others": sorted(set(others) | set(others_running())), "idle": idle}
    if any(s.failures for s in stats.values()):
        context["edge_log"] = edge_log({demo_cluster.HTTP_PORT: EDGE_HOST, SOLO_PORT: SOLO}, began)
    text = "\n".join(report(args, stats, rows, context)) + "\n"
    print(text)
    write_results(args.output, text)
    bad = [r for r in rows if r["expect"] != "any" and r["result"] != r["expect"]]
    bad += [r for r in idle["rows"] if r["exit"] != 0]
    failed = sum(s.non_2xx + s.conn_errors for s in stats.values())
    return 1 if bad or failed else 0


# The edge's log lines that explain a failed request: its 5xx answers (HAProxy's access log, `<NOSRV>` when no server
# was up) and its servers' state changes (`Server be_.../x is DOWN, reason: ...`).
EDGE_LOG_LINE = re.compile(r"\s5\d\d\s\d|<NOSRV>| is (DOWN|UP)\b|going DOWN|no server available")


def edge_log(hosts: Mapping[int, str], since: float, limit: int = 40,
             read: Callable[[str, str], str] = host_sh) -> list[str]:
    """The last `limit` of those lines from each host's edge container since `since` (time.time()), by port."""
    lines = []
    for port, host in sorted(hosts.items()):
        out = read(host, f"docker logs --since {int(since)} edge-proxy 2>&1")
        lines += [f"{port}: {line}" for line in out.splitlines() if EDGE_LOG_LINE.search(line)][-limit:]
    return lines


def deploy(target: Target, version: str,
           run: Callable[..., tuple[int, float, str]] = playbook) -> tuple[int, float, str]:
    """The service at `version` on `target`'s environment: deploy.yml with its inventory and environment."""
    return run(target.inventory, "deploy", "-e", f"service={SERVICE}", "-e", f"version={version}", env=target.env)


def busy_seconds(stat: str | None = None) -> float:
    """CPU seconds the whole machine has been busy since boot, every core (/proc/stat's first line: user, nice,
    system, irq, softirq, steal): the hosts are containers here, so their work and the controller's are all in it."""
    text = Path("/proc/stat").read_text(encoding="ascii") if stat is None else stat
    fields = text.splitlines()[0].split()
    if fields[0] != "cpu" or len(fields) < 9:
        raise ValueError(f"not /proc/stat's first line: {fields[:3]}")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# Before the load: each environment v1.0.0 then v2.0.0 over SSH (both at make demo-cluster's v2.0.0 again after),
# interleaved, each deploy's machine-wide CPU counted; the baseline (the idle hosts' own work) is taken off.
# Two rounds: four deploys of each.
IDLE_SEQUENCE = [("cluster-ssh", "v1.0.0"), ("solo-ssh", "v1.0.0"), ("cluster-ssh", "v2.0.0"),
                 ("solo-ssh", "v2.0.0")] * 2
BASELINE_SECONDS = 10.0


def controller_seconds() -> float:
    """CPU seconds this bench's finished children spent, theirs waited for included (getrusage RUSAGE_CHILDREN):
    ansible-playbook, its workers and the SSH clients they ran; not a ControlPersist master, which outlives them."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def idle_cpu(found: dict[str, Target], run: Callable[..., tuple[int, float, str]] = playbook, *,
             busy: Callable[[], float] = busy_seconds, clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep,
             controller: Callable[[], float] = controller_seconds) -> dict[str, Any]:
    """{baseline (busy cores while nothing is asked), rows: [{label, version, exit, wall, cpu, controller}]}: the CPU
    each deploy costs the machine (controller, SSH, the hosts' programs, Docker, the containers it starts and stops),
    and the controller's part of it."""
    b0, t0 = busy(), clock()
    sleep(BASELINE_SECONDS)
    baseline = (busy() - b0) / max(clock() - t0, 1e-9)
    rows = []
    for key, version in IDLE_SEQUENCE:
        target = found[key]
        b0, t0, c0 = busy(), clock(), controller()
        code, _, _ = deploy(target, version, run)
        wall = clock() - t0
        rows.append({"label": target.label, "version": version, "exit": code, "wall": wall,
                     "cpu": max(0.0, busy() - b0 - baseline * wall), "controller": controller() - c0})
        print(f"idle {target.label:7} {version:8} exit {code} {wall:5.1f}s cpu {rows[-1]['cpu']:.1f}s "
              f"controller {rows[-1]['controller']:.1f}s", file=sys.stderr)
        sleep(1)
    return {"baseline": baseline, "rows": rows}


def cpu_section(idle: Mapping[str, Any]) -> list[str]:
    """The page's section on what each deploy costs the machine, and what that means for the ratio under load."""
    rows = idle.get("rows") or []
    if not rows:
        return []
    lines = ["", "## CPU per deploy (before the load)", "",
             f"Each deploy over SSH on the otherwise idle machine, the CPU seconds the whole machine spent on it "
             f"(/proc/stat, every process: the controller, SSH, the hosts' programs, Docker and the containers it "
             f"starts and stops), less the idle hosts' own {idle['baseline']:.2f} busy cores; the controller's part "
             "(ansible-playbook, its workers, the SSH clients: the bench's children) and the rest (the hosts' side: "
             "sshd, the hosts' programs, Docker, the containers).", "",
             "| environment | version | exit | wall s | CPU s | controller s | hosts s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    # The hosts' side of each deploy: what the controller did not spend.
    rows = [{**r, "hosts": max(0.0, r["cpu"] - r.get("controller", 0.0))} for r in rows]
    lines += [f"| {r['label']} | {r['version']} | {r['exit']} | {r['wall']:.2f} | {r['cpu']:.2f} | "
              f"{r.get('controller', 0.0):.2f} | {r['hosts']:.2f} |" for r in rows]
    ok = [r for r in rows if r["exit"] == 0]

    def med(key: str, label: str) -> float | None:
        return _median([r.get(key, 0.0) for r in ok if r["label"] == label])

    cpu = {label: med("cpu", label) for label in ("cluster", "one VM")}
    wall = {label: med("wall", label) for label in ("cluster", "one VM")}
    ctl = {label: med("controller", label) or 0.0 for label in ("cluster", "one VM")}
    if cpu["cluster"] and cpu["one VM"] and wall["cluster"] and wall["one VM"]:
        lines += ["", f"- Cluster / one VM, idle: wall {wall['cluster'] / wall['one VM']:.2f}x, CPU "
                  f"{cpu['cluster'] / cpu['one VM']:.2f}x ({cpu['cluster']:.2f} s against {cpu['one VM']:.2f} s; "
                  f"the controller's {ctl['cluster']:.2f} s against {ctl['one VM']:.2f} s). Under the load "
                  f"the {os.cpu_count()} cores are busy all the time and every host shares them: the cluster's app "
                  "hosts' work (two colours started and gated, two stopped) overlaps less than idle, or than on "
                  "separate VMs, where each app host has cores of its own."]
        hosts = {label: med("hosts", label) or 0.0 for label in ("cluster", "one VM")}
        if hosts["one VM"] > 0 and ctl["one VM"]:
            lines.append(f"- The hosts' side alone: the cluster's {hosts['cluster']:.2f} s against one VM's "
                         f"{hosts['one VM']:.2f} s ({hosts['cluster'] / hosts['one VM']:.2f}x: each app host boots, "
                         "gates and stops its own colour); the controller's part "
                         f"{ctl['cluster'] / ctl['one VM']:.2f}x.")
    return lines


def run_sequence(found: dict[str, Target], stop: threading.Event,
                 run: Callable[..., tuple[int, float, str]] = playbook) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key, version, expect in SEQUENCE:
        if stop.is_set():
            break
        target = found[key]
        before, started = last_lines(target.apps), time.time()
        outcome = deploy(target, version, run)
        ended, after = time.time(), last_lines(target.apps)
        new = merged({app: line for app, line in after.items() if line != before.get(app)})
        result = row(("deploy", version, expect), outcome, new)
        result.update(label=target.label, transport=target.transport, hosts=new.get("hosts", 0),
                      window=(f"#{len(rows) + 1} ({target.label}, {target.transport}, {version})", started, ended))
        rows.append(result)
        print(f"{target.label:7} {target.transport:17} {version:8} {result['result']:8} {outcome[1]:6.1f}s "
              + " ".join(f"{k}={v:.1f}" for k, v in result["durations"].items()), file=sys.stderr)
        if result["tail"] and expect not in ("any", "failed"):
            print(result["tail"], file=sys.stderr)
        time.sleep(1)
    return rows


def ansible_cfg_ssh() -> str:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "ansible.cfg")
    return (f"pipelining = {cfg.get('ssh_connection', 'pipelining', fallback='(unset)')}, "
            f"ssh_args = {cfg.get('ssh_connection', 'ssh_args', fallback='(unset)')}")


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def report(args: argparse.Namespace, stats: dict[int, Stats], rows: list[dict[str, Any]],
           context: dict[str, Any]) -> list[str]:
    phases = [p for p in PHASES if p not in ("preflight", "unlock")]
    before, after = context["load_before"], context["load_after"]
    others = context["others"]
    lines = [
        "# Cluster benchmark",
        "",
        f"{context['started']}, `bench/cluster_bench.py` (its docstring says how). The demo cluster (`make "
        "demo-cluster`: edge, two app hosts, one Debian 13, data host; over SSH as `deploy` with sudo) and one VM "
        f"({SOLO}, every role) on the same machine, the same environment and release. Machine: "
        f"{os.cpu_count()} cores, load average {before[0]:.1f} at the start and {after[0]:.1f} at the end. "
        + (f"Other engineers' containers ran at the same time ({len(others)}: {', '.join(others)}): Molecule "
           "scenarios on the same 2 cores, so the times are under load." if others else
           "No other container ran."),
        "",
        f"Load on each edge for the whole run: {args.kept_alive} kept-alive + {args.new_connection} new-connection "
        f"clients (bench/rollout_bench.py's), no retries, one request per {args.interval:g} s per client at most, "
        f"GET /version, /health, /notes, Host {DOMAIN}.",
        "",
        "| edge | requests | non-2xx | connection errors | p50 latency | p99 latency |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for port, label in ((demo_cluster.HTTP_PORT, "cluster (slipway-dc-edge)"), (SOLO_PORT, f"one VM ({SOLO})")):
        s = stats[port]
        lines.append(f"| {label}, 127.0.0.1:{port} | {s.requests} | {s.non_2xx} | {s.conn_errors} | "
                     f"{pct(s.latencies, 0.5) * 1000:.1f} ms | {pct(s.latencies, 0.99) * 1000:.1f} ms |")
    errors = {f"{port}: {k}": v for port, s in stats.items() for k, v in s.errors.items()}
    if errors:
        lines += ["", "Errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(errors.items())), "",
                  "When they failed (UTC), and the edge's own log lines about them (its 5xx answers, its servers "
                  "going DOWN or UP):", ""]
        windows = [r["window"] for r in rows if "window" in r]
        for port, s in sorted(stats.items()):
            lines += [f"- {port}: {line}" for line in when_failed(s.failures, windows)]
        lines += [f"    {line}" for line in context.get("edge_log", [])]
    lines += ["", "Rollouts: `ansible-playbook playbooks/deploy.yml -e env=demo_cluster -e service=notes-api -e "
              "version=V` with the variant's inventory, timed whole. Phases are the hosts' (history.jsonl; across "
              "app hosts the slowest host's time of each phase); start->healthy is the new container's own time "
              "from `docker run` to its first passing HEALTHCHECK.", "",
              "| # | environment | transport | version | result | wall s | " + " | ".join(phases)
              + " | start->healthy |",
              "|---:|---|---|---|---|---:|" + "---:|" * len(phases) + "---:|"]
    for i, r in enumerate(rows, 1):
        cells = [f"{r['durations'][p]:.2f}" if p in r["durations"] else "" for p in phases]
        boot = f"{r['boot']:.2f}" if r.get("boot") is not None else ""
        result = r["result"] + (f" ({r['phase']})" if r["phase"] else "")
        lines.append(f"| {i} | {r['label']} | {r['transport']} | {r['version']} | {result} | {r['wall']:.2f} | "
                     + " | ".join(cells) + f" | {boot} |")
    lines += ["", *summary(rows)]
    lines += ["", f"SSH settings (ansible.cfg, [ssh_connection]): {ansible_cfg_ssh()}; facts in memory, as slipway "
              "runs the playbooks."]
    lines += cpu_section(context.get("idle") or {})
    return lines


def summary(rows: list[dict[str, Any]]) -> list[str]:
    def walls(label: str, transport: str, result: str = "deployed") -> list[float]:
        return [r["wall"] for r in rows if r["label"] == label and r["transport"] == transport
                and r["result"] == result and r["expect"] == result]

    lines = ["| transport | cluster deploy s (median, n) | one-VM deploy s (median, n) | cluster / one VM | "
             "cluster no-op s | one-VM no-op s |", "|---|---:|---:|---:|---:|---:|"]
    medians: dict[tuple[str, str], float | None] = {}
    for transport in ("ssh", NO_CP, "docker"):
        cluster, solo = walls("cluster", transport), walls("one VM", transport)
        medians[("cluster", transport)], medians[("one VM", transport)] = _median(cluster), _median(solo)
        ratio = (f"{statistics.median(cluster) / statistics.median(solo):.2f}" if cluster and solo else "")
        noop = [_median(walls(label, transport, "noop")) for label in ("cluster", "one VM")]
        lines.append(f"| {transport} | {_fmt(_median(cluster))} ({len(cluster)}) | {_fmt(_median(solo))} "
                     f"({len(solo)}) | {ratio} (target <= 1.3) | {_fmt(noop[0])} | {_fmt(noop[1])} |")
    lines.append("")
    for label in ("cluster", "one VM"):
        ssh, docker, fresh = medians[(label, "ssh")], medians[(label, "docker")], medians[(label, NO_CP)]
        if ssh and docker:
            lines.append(f"- What SSH adds to a deploy, {label}: {ssh - docker:+.2f} s ({ssh / docker:.2f}x the "
                         "Docker connection's median).")
        if ssh and fresh:
            lines.append(f"- What ControlPersist saves, {label}: {fresh - ssh:+.2f} s (a new SSH connection per task "
                         f"takes {fresh:.2f} s against {ssh:.2f} s).")
    failing = [r for r in rows if r["transport"] == "ssh, app-2 fails"]
    for r in failing:
        lines.append(f"- The release failing its health gate on {FAILING} only: {r['result']}"
                     + (f" in phase {r['phase']}" if r["phase"] else "") + f" after {r['wall']:.1f} s, "
                     f"{r['hosts']} app host(s) wrote a history line.")
    unexpected = [f"#{i} {r['label']} {r['transport']} {r['version']}: {r['result']} (expected {r['expect']})"
                  for i, r in enumerate(rows, 1) if r["expect"] != "any" and r["result"] != r["expect"]]
    if unexpected:
        lines.append("- UNEXPECTED: " + "; ".join(unexpected))
    return lines


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())
