#!/usr/bin/env python3
"""Run docs/runbook.md's "Move from one VM to three without losing data" end to end, under load (issue 12).

Hosts: systemd + Docker containers on a network of this script's own, slipway-mv (10.215.0.0/24: clear of the demo
cluster's slipway-dc 10.214.0.0/24 and the Molecule scenario `cluster`'s 10.213.0.0/24), brought up by
scripts/demo_cluster.py's up() with this script's network and key: the VM slipway-mv-vm (10.215.0.10, its edge's
port 80 on 127.0.0.1:8083), then the two new VMs slipway-mv-app-1 and -2 (.11, .12). Reached over SSH as `deploy`
with sudo through `slipway --env move_three --project-dir .cache/move-to-three/ops` (scripts/ops_run.py), the way
an operator's machine runs it: the operations directory's only environment is move_three, a copy of
bench/move-to-three/ (one VM holding every role), whose hosts.yml this script edits as the runbook's steps say.

The run: (0) the VM alone: provision, deploy notes-api v1.0.0, write notes (the data); then load through the VM's
edge (bench/rollout_bench.py's clients, via cluster_bench.start_load) for the whole move; (1)-(6) the runbook's
steps; then the checks: every note of (0) read back through the edge while the VM runs no colour, a new note
written through the edge found in the VM's PostgreSQL, `slipway status` showing the new hosts live. Each step's wall
time and result and the requests / non-2xx / connection errors through the edge during it are printed and written
to bench/move-to-three.md. The hosts are removed at the end (--keep leaves them up).

    .venv/bin/python bench/move_to_three.py            # about 15 min on 2 cores
"""

# ruff: noqa: S603, S607 - fixed argument lists: docker on this machine
from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
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
from cluster_bench import DOMAIN, SERVICE, others_running, start_load  # noqa: E402 - bench/, this script's
from rollout_bench import Stats, pct, write_results  # noqa: E402

ENV = "move_three"
DATABASE = "notes_api"
VERSION = "v1.0.0"  # the live version, the inventory's
TEMPLATE = ROOT / "bench" / "move-to-three"
WORK = ROOT / ".cache" / "move-to-three"
OPS = WORK / "ops"
INVENTORY = OPS / "inventories" / ENV
SITE = demo_cluster.Site(network="slipway-mv", subnet="10.215.0.0/24", gateway="10.215.0.1",
                         key=WORK / "id_ed25519")
HTTP_PORT = 8083
VM = "slipway-mv-vm"
ADDRESSES = {VM: "10.215.0.10", "slipway-mv-app-1": "10.215.0.11", "slipway-mv-app-2": "10.215.0.12"}
APPS = ("slipway-mv-app-1", "slipway-mv-app-2")
NOTES = 5
COLOURS = (f"{SERVICE}-blue", f"{SERVICE}-green")


class MoveError(Exception):
    """A step did not do what the runbook says it does."""


# The runbook's edits of hosts.yml (pure: each returns a new inventory).
def env_group(inventory: Mapping[str, Any], env: str) -> dict[str, Any]:
    group: dict[str, Any] = inventory["all"]["children"][env]
    return group


def three_vms(inventory: Mapping[str, Any], env: str, vm: str, addresses: Mapping[str, str]) -> dict[str, Any]:
    """Step 1 and 2: every host gets its `slipway_private_address` (here its only address, also ansible_host); the
    VM goes into <env>_edge, <env>_data, <env>_monitoring and, for now, <env>_app; the new VMs into <env>_app."""
    moved = copy.deepcopy(dict(inventory))
    group = env_group(moved, env)
    entry = {**(group.pop("hosts", {}) or {}).get(vm, {}), "slipway_private_address": addresses[vm]}
    apps = {name: {"ansible_host": address, "slipway_private_address": address}
            for name, address in addresses.items() if name != vm}
    group["children"] = {f"{env}_edge": {"hosts": {vm: entry}}, f"{env}_data": {"hosts": {vm: None}},
                         f"{env}_monitoring": {"hosts": {vm: None}}, f"{env}_app": {"hosts": {vm: None, **apps}}}
    return moved


def out_of_app(inventory: Mapping[str, Any], env: str, host: str) -> dict[str, Any]:
    """Step 5: `host` taken out of <env>_app (it keeps its other roles)."""
    moved = copy.deepcopy(dict(inventory))
    app = env_group(moved, env)["children"][f"{env}_app"]["hosts"]
    if host not in app:
        raise MoveError(f"{host} is not in {env}_app")
    del app[host]
    return moved


def live_hosts(status: Mapping[str, Any], service: str) -> dict[str, str]:
    """`slipway status --json`'s records of `service`: host -> "<version> <colour>" for each healthy one, else
    host -> "unhealthy: <message>"."""
    return {str(r["host"]): (f"{r.get('version')} {r.get('colour')}" if r.get("healthy")
                             else f"unhealthy: {r.get('message', '')}")
            for r in status.get("records") or [] if r.get("service") == service}


# Each step's row: its wall time, its result and what the load saw during it.
@dataclass
class Step:
    number: str
    what: str
    wall: float = 0.0
    result: str = "not run"
    requests: int = 0
    non_2xx: int = 0
    conn_errors: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def counts(stats: Stats) -> tuple[int, int, int, dict[str, int]]:
    with stats.lock:
        return stats.requests, stats.non_2xx, stats.conn_errors, dict(stats.errors)


def run_step(step: Step, action: Callable[[], str], stats: Stats) -> bool:
    """Run `action` (it returns what it found), timing it and counting the load's requests meanwhile."""
    before, start = counts(stats), time.monotonic()
    try:
        step.result, ok = "ok" + (f": {found}" if (found := action()) else ""), True
    except (MoveError, demo_cluster.DemoError, OSError, subprocess.SubprocessError) as exc:
        step.result, ok = f"FAILED: {exc}", False
    step.wall = time.monotonic() - start
    after = counts(stats)
    step.requests, step.non_2xx, step.conn_errors = after[0] - before[0], after[1] - before[1], after[2] - before[2]
    step.errors = {k: v - before[3].get(k, 0) for k, v in after[3].items() if v != before[3].get(k, 0)}
    shown = step.result if not ok else step.result[:160]  # a failure whole: the table keeps 300 characters
    print(f"step {step.number:3} {step.wall:6.1f}s {shown}  (requests {step.requests}, non-2xx "
          f"{step.non_2xx}, connection errors {step.conn_errors})", file=sys.stderr, flush=True)
    return ok


def table(steps: Sequence[Step], stats: Stats, context: Mapping[str, Any]) -> list[str]:
    """The page: context, one row per step, the load's totals over the move (steps 1 to 6) and over the run."""
    lines = [
        "# Move from one VM to three under load",
        "",
        f"{context['started']}, `bench/move_to_three.py` (its docstring says how): docs/runbook.md's \"Move from one "
        f"VM to three without losing data\", step by step, over SSH through `slipway --env {ENV}`, on host "
        f"containers of its own ({VM}, {', '.join(APPS)}; network {SITE.network} {SITE.subnet}). Machine: "
        f"{os.cpu_count()} cores, load average {context['load_before']:.1f} at the start and "
        f"{context['load_after']:.1f} at the end; other containers running: {context['others'] or 'none'}.",
        "",
        f"Load through the VM's edge (127.0.0.1:{HTTP_PORT}, Host {DOMAIN}) from the end of step 0 to the end of "
        f"the checks: {context['clients']}, GET /version, /health, /notes?limit=5, no retries.",
        "",
        "| step | what | wall s | result | requests | non-2xx | connection errors |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for s in steps:
        errors = f" ({', '.join(f'{k} x{v}' for k, v in sorted(s.errors.items()))})" if s.errors else ""
        result = s.result.replace("|", "/").replace("\n", " ")[:300]
        lines.append(f"| {s.number} | {s.what} | {s.wall:.1f} | {result} | {s.requests} | {s.non_2xx} | "
                     f"{s.conn_errors}{errors} |")
    move = [s for s in steps if s.number[:1] in "123456"]
    lines += ["", f"The move (steps 1-6): {sum(s.wall for s in move):.0f} s, {sum(s.requests for s in move)} "
              f"requests, {sum(s.non_2xx for s in move)} non-2xx, {sum(s.conn_errors for s in move)} connection "
              f"errors. The whole load: {stats.requests} requests, {stats.non_2xx} non-2xx, {stats.conn_errors} "
              f"connection errors, p50 {pct(stats.latencies, 0.5) * 1000:.1f} ms, p99 "
              f"{pct(stats.latencies, 0.99) * 1000:.1f} ms."]
    return lines


# The hosts and the edge.
def slipway(*args: str) -> ops_run.Run:
    run = ops_run.slipway(OPS, ENV, SITE.key, *args)
    if run.returncode != 0:
        raise MoveError(f"slipway {' '.join(args)} exited {run.returncode}: {run.output.strip()[-1500:]}")
    return run


def on_vm(*argv: str) -> str:
    """A command on the VM as root (the runbook's "on the VM")."""
    done = subprocess.run(["docker", "exec", VM, *argv], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise MoveError(f"{' '.join(argv)} on {VM} exited {done.returncode}: {(done.stderr or done.stdout)[-800:]}")
    return done.stdout.strip()


def http(method: str, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{HTTP_PORT}{path}", data=data, method=method,
                                     headers={"Host": DOMAIN, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback, the VM's published edge
        return int(resp.status), json.loads(resp.read())


def write_inventory(inventory: Mapping[str, Any], directory: Path = INVENTORY) -> None:
    (directory / "hosts.yml").write_text(yaml.safe_dump(dict(inventory), sort_keys=False), encoding="utf-8")


def read_inventory() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((INVENTORY / "hosts.yml").read_text(encoding="utf-8"))
    return data


class Move:
    """The run's steps, in order, sharing what they found (the notes written in step 0)."""

    def __init__(self) -> None:
        self.notes: dict[int, str] = {}

    def bring_up_vm(self) -> str:
        ops_run.ops_directory(ROOT, OPS, TEMPLATE, ENV)
        hosts = demo_cluster.up(INVENTORY, ENV, HTTP_PORT, SITE)
        return ", ".join(h.name for h in hosts)

    @staticmethod
    def provision() -> str:
        return f"changed {slipway('provision').changed}"

    @staticmethod
    def deploy_inventory_version() -> str:
        slipway("deploy")
        return f"/version answers {http('GET', '/version')[1]['version']}"

    def write_notes(self) -> str:
        for i in range(NOTES):
            status, note = http("POST", "/notes", {"title": f"before the move {i}", "body": f"note {i} of {NOTES}"})
            if status != 201:
                raise MoveError(f"POST /notes answered {status}")
            self.notes[int(note["id"])] = note["title"]
        return f"{len(self.notes)} notes, ids {sorted(self.notes)}"

    @staticmethod
    def create_vms() -> str:
        """Step 1: the two VMs (up() with the step 2 layout in a scratch copy), their keys pinned in the
        environment's known_hosts."""
        scratch = WORK / "new-vms"
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.copytree(INVENTORY, scratch)
        write_inventory(three_vms(read_inventory(), ENV, VM, ADDRESSES), scratch)
        demo_cluster.up(scratch, ENV, HTTP_PORT, SITE)
        shutil.copy(scratch / "known_hosts", INVENTORY / "known_hosts")
        return f"{', '.join(APPS)} up, host keys pinned"

    @staticmethod
    def inventory_three() -> str:
        write_inventory(three_vms(read_inventory(), ENV, VM, ADDRESSES))
        done = ops_run.playbook(OPS, SITE.key, "playbooks/preflight.yml", "-e", f"env={ENV}",
                                "-e", "slipway_preflight_request=deploy")
        if done.returncode != 0:
            raise MoveError(f"preflight refused the inventory: {(done.stdout + done.stderr)[-1500:]}")
        return "preflight passed"

    @staticmethod
    def deploy_live_version() -> str:
        run = slipway("deploy", "--service", SERVICE, "--version", VERSION, "--json")
        results = json.loads(run.stdout).get("results") or []
        found = {str(r["host"]): str(r["result"]) for r in results}
        if sorted(found) != sorted(ADDRESSES) or set(found.values()) != {"deployed"}:
            raise MoveError(f"the deploy's results: {found}")
        return ", ".join(f"{h} {r}" for h, r in sorted(found.items()))

    @staticmethod
    def backup() -> str:
        return on_vm("slipway-pg-backup", DATABASE).splitlines()[-1]

    @staticmethod
    def vm_out_of_app() -> str:
        write_inventory(out_of_app(read_inventory(), ENV, VM))
        return f"changed {slipway('provision').changed}"

    @staticmethod
    def status_new_hosts_live() -> str:
        found = live_hosts(json.loads(slipway("status", "--json").stdout), SERVICE)
        if sorted(found) != sorted(APPS) or any(not v.startswith(f"{VERSION} ") for v in found.values()):
            raise MoveError(f"slipway status: {found}")
        return "; ".join(f"{h}: {v}" for h, v in sorted(found.items()))

    @staticmethod
    def stop_vm_colours() -> str:
        on_vm("docker", "stop", *COLOURS)
        running = on_vm("docker", "ps", "--format", "{{.Names}}").split()
        left = [name for name in running if name.startswith(f"{SERVICE}-")]
        if left:
            raise MoveError(f"still running on {VM}: {left}")
        return f"{' '.join(COLOURS)} stopped"

    def notes_read_back(self) -> str:
        running = on_vm("docker", "ps", "--format", "{{.Names}}").split()
        if any(name.startswith(f"{SERVICE}-") for name in running):
            raise MoveError(f"{VM} still runs a colour: the reads would not show the new hosts serving")
        for note_id, title in self.notes.items():
            status, note = http("GET", f"/notes/{note_id}")
            if status != 200 or note.get("title") != title:
                raise MoveError(f"note {note_id}: {status} {note}")
        return f"{len(self.notes)} of {len(self.notes)} notes, the VM running no colour"

    @staticmethod
    def new_note_in_vm_database() -> str:
        status, note = http("POST", "/notes", {"title": "after the move", "body": "served by the app hosts"})
        if status != 201:
            raise MoveError(f"POST /notes answered {status}")
        query = f"SELECT title FROM notes WHERE id = {int(note['id'])}"  # noqa: S608 - an int
        title = on_vm("docker", "exec", "postgres", "psql", "-U", "postgres", "-d", DATABASE, "-tAc", query)
        if title != "after the move":
            raise MoveError(f"the VM's PostgreSQL has {title!r} for note {note['id']}")
        return f"note {note['id']} in {VM}'s PostgreSQL"


def steps(move: Move) -> list[tuple[Step, Callable[[], str]]]:
    return [
        (Step("0a", f"bring up the VM ({VM}, every role)"), move.bring_up_vm),
        (Step("0b", "`slipway provision` (one VM)"), move.provision),
        (Step("0c", f"`slipway deploy` ({SERVICE} {VERSION}, the inventory's)"), move.deploy_inventory_version),
        (Step("0d", "write notes through the edge"), move.write_notes),
        (Step("1", "create two VMs, pin their host keys (the VM's private address: step 2's inventory)"),
         move.create_vms),
        (Step("2", f"inventory: the VM in {ENV}_edge/_data/_monitoring/_app, the new VMs in {ENV}_app; preflight"),
         move.inventory_three),
        (Step("3", "`slipway provision`"), move.provision),
        (Step("4", f"`slipway deploy --service {SERVICE} --version {VERSION}` (the live version)"),
         move.deploy_live_version),
        (Step("5a", f"backup first: `slipway-pg-backup {DATABASE}` on the VM"), move.backup),
        (Step("5b", f"the VM out of {ENV}_app, `slipway provision`"), move.vm_out_of_app),
        (Step("5c", "`slipway status` shows the new hosts live"), move.status_new_hosts_live),
        (Step("5d", f"stop the VM's colours (`docker stop {' '.join(COLOURS)}`)"), move.stop_vm_colours),
        (Step("6", "security groups: nothing to open here (one Docker network, no firewall)"), lambda: "n/a"),
        (Step("check", "every note of step 0 read back through the edge"), move.notes_read_back),
        (Step("check", "a new note through the edge is in the VM's PostgreSQL"), move.new_note_in_vm_database),
        (Step("check", "`slipway status` after the checks"), move.status_new_hosts_live),
    ]


def down() -> None:
    demo_cluster.down([VM, *APPS], SITE.network, INVENTORY / "known_hosts")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kept-alive", type=int, default=2, help="kept-alive clients")
    parser.add_argument("--new-connection", type=int, default=2, help="new-connection clients")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between a client's requests")
    parser.add_argument("--max-seconds", type=float, default=2400, help="the load stops after this at most")
    parser.add_argument("--keep", action="store_true", help="leave the hosts up at the end")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "move-to-three.md")
    args = parser.parse_args()

    down()  # from no host: the run starts from one fresh VM
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    context: dict[str, Any] = {"started": started, "load_before": os.getloadavg()[0],
                               "clients": f"{args.kept_alive} kept-alive + {args.new_connection} new-connection "
                                          f"clients, one request per {args.interval:g} s each at most",
                               "others": ", ".join(others_running())}
    stop = threading.Event()
    stats: dict[int, Stats] = {HTTP_PORT: Stats()}
    threads: list[threading.Thread] = []
    watchdog = threading.Timer(args.max_seconds, stop.set)
    done: list[Step] = []
    ok = True
    for step, action in steps(Move()):
        done.append(step)
        if ok:
            ok = run_step(step, action, stats[HTTP_PORT])
        if step.number == "0d" and ok:
            stats, threads = start_load((HTTP_PORT,), args, stop)
            watchdog.start()
            time.sleep(2)
    stop.set()
    watchdog.cancel()
    for thread in threads:
        thread.join(timeout=15)
    context["load_after"] = os.getloadavg()[0]
    text = "\n".join(table(done, stats[HTTP_PORT], context)) + "\n"
    print(text)
    write_results(args.output, text)
    if not args.keep:
        down()
    failed = stats[HTTP_PORT].non_2xx + stats[HTTP_PORT].conn_errors
    return 0 if ok and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
