#!/usr/bin/env python3
"""What SSH costs: the same plays on the same host of the cluster scenario over SSH and over the Docker connection.

Plays (on cluster-app-2, Debian 12, converged: every run is a no-op, so the time is Ansible's and the connection's):
- `engine+network`: infra.yml's first play, the docker_engine and infra_network roles (facts gathered, ~20 tasks);
- `5 tasks`: five small tasks (ping, command, stat, slurp, command) without facts.
Connections, the same inventory and settings otherwise (become through sudo in all of them):
- `ssh`: the operations directory's ansible.cfg (the repository's: pipelining, ControlPersist 60s), as `deploy`;
- `ssh, no pipelining`: ANSIBLE_PIPELINING=False (every module is copied over first);
- `ssh, no ControlPersist`: a new SSH connection for every task (ControlMaster=no);
- `docker`: community.docker.docker as root into the same container (`docker exec`), no SSH at all.
Each row is the median of --repeat runs (wall time of ansible-playbook, start to exit), run in turn so machine
load spreads over all of them; the first SSH run of each round starts without a master connection, like a CI job.

    molecule converge -s cluster                      # the cluster up and provisioned (or any state after it)
    .venv/bin/python bench/ssh_vs_docker.py           # prints the table, writes bench/ssh_vs_docker.md

With --scenario it first times the whole scenario from no cluster (`molecule destroy`, then `molecule test -s cluster
--destroy never`, each stage from Molecule's own "Executing"/"Executed" lines), runs the plays on the hosts it
leaves, then `molecule destroy`.
Each part is a section of the page (write_results, as bench/rollout_bench.py): a run of one part keeps the other.
"""

# ruff: noqa: S603 - fixed argument lists: molecule and ansible-playbook of this virtualenv
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "molecule" / "cluster" / "tests"))
import cluster_run  # noqa: E402 - the scenario's helpers, found through the line above
from rollout_bench import write_results  # noqa: E402 - bench/ is on sys.path when this script runs

STAGE = re.compile(r"cluster\S* ➜ \S*?(\w+)\S*: \S*(Executing|Executed: Successful)")

HOST = "cluster-app-2"
ENGINE_NETWORK = """\
- name: Engine and network (infra.yml's first play)
  hosts: cluster
  become: true
  roles:
    - role: docker_engine
    - role: infra_network
"""
FIVE_TASKS = """\
- name: Five small tasks
  hosts: cluster
  gather_facts: false
  become: true
  tasks:
    - name: Ping
      ansible.builtin.ping:
    - name: Ask the engine's version
      ansible.builtin.command: docker version --format '{{ '{{' }}.Server.Version{{ '}}' }}'
      changed_when: false
    - name: Stat daemon.json
      ansible.builtin.stat:
        path: /etc/docker/daemon.json
    - name: Read daemon.json
      ansible.builtin.slurp:
        src: /etc/docker/daemon.json
    - name: Ask systemd
      ansible.builtin.command: systemctl is-active docker
      changed_when: false
"""
PLAYS = {"engine+network": ENGINE_NETWORK, "5 tasks": FIVE_TASKS}
DOCKER = ["-e", "ansible_connection=community.docker.docker", "-e", f"ansible_host={HOST}",
          "-e", "ansible_user=root"]
CONNECTIONS: dict[str, tuple[list[str], dict[str, str]]] = {
    "ssh": ([], {}),
    "ssh, no pipelining": ([], {"ANSIBLE_PIPELINING": "False"}),
    "ssh, no ControlPersist": ([], {"ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ServerAliveInterval=15"}),
    "docker": (DOCKER, {}),
}


def find_run_dir() -> Path:
    """The cluster scenario's Molecule run directory whose operations directory belongs to this repository."""
    roles = f"roles_path = {ROOT}/roles"
    for cfg in sorted(Path.home().glob(".ansible/tmp/molecule.*.cluster/ops/ansible.cfg")):
        if roles in cfg.read_text(encoding="utf-8"):
            return cfg.parent.parent
    raise SystemExit("no converged cluster scenario of this repository: run `molecule converge -s cluster` first")


def timed(play: Path, extra: list[str], env: dict[str, str], control: Path) -> float:
    start = time.monotonic()
    run = cluster_run.playbook(play, "-l", HOST, *extra, extra_env={
        "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.memory", "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control), **env})
    seconds = time.monotonic() - start
    if run.returncode != 0 or f"{HOST}" not in run.stdout or "changed=0" not in run.stdout.split("PLAY RECAP")[-1]:
        raise SystemExit(f"the run failed or changed something:\n{(run.stdout + run.stderr)[-3000:]}")
    return seconds


def scenario() -> list[str]:
    """`molecule test -s cluster --destroy never`, timed per stage from Molecule's lines as they arrive."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOLECULE_", "ANSIBLE_"))}
    env["PATH"] = os.pathsep.join([str(cluster_run.BIN), env.get("PATH", os.defpath)])
    # A clean start: with --destroy never, Molecule also skips the sequence's first destroy (then create and prepare
    # skip an existing cluster), so destroy first and leave that out of the time.
    subprocess.run([str(cluster_run.BIN / "molecule"), "destroy", "-s", "cluster"], cwd=ROOT, env=env,
                   capture_output=True, check=True)
    env["PYTHONUNBUFFERED"] = "1"  # Molecule's lines as they happen
    start = time.monotonic()
    began: dict[str, float] = {}
    stages: list[tuple[str, float]] = []
    with subprocess.Popen([str(cluster_run.BIN / "molecule"), "test", "-s", "cluster", "--destroy", "never"],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout or ():
            found = STAGE.search(re.sub(r"\x1b\[[0-9;]*m", "", line))
            if found and found.group(2) == "Executing":
                began[found.group(1)] = time.monotonic()
            elif found and found.group(1) in began:
                stages.append((found.group(1), time.monotonic() - began.pop(found.group(1))))
    total = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"molecule test -s cluster failed (exit {proc.returncode})")
    load = os.getloadavg()[0]
    return [f"`molecule test -s cluster --destroy never` from no cluster (neither destroy is timed): {total:.0f} s; "
            f"load average at the end {load:.1f} on 2 cores.", "",
            "| stage | s |", "|---|---:|",
            *(f"| {name} | {seconds:.0f} |" for name, seconds in stages if name != "destroy")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scenario", action="store_true", help="time molecule test -s cluster first (above)")
    parser.add_argument("--run-dir", type=Path, help="the scenario's Molecule run directory (default: found)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "ssh_vs_docker.md")
    args = parser.parse_args()
    if args.scenario:
        text = "\n".join(scenario())
        print(text)
        write_results(args.output, "## The scenario's time\n\n" + text, section="scenario")
    try:
        plays(args)
    finally:
        if args.scenario:
            subprocess.run([str(cluster_run.BIN / "molecule"), "destroy", "-s", "cluster"], cwd=ROOT,
                           capture_output=True, check=False)
    return 0


def plays(args: argparse.Namespace) -> None:
    os.environ["MOLECULE_EPHEMERAL_DIRECTORY"] = str(args.run_dir or find_run_dir())
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="ssh-bench-") as tmp:
        files = {}
        for name, text in PLAYS.items():
            files[name] = Path(tmp) / (name.replace(" ", "_").replace("+", "_") + ".yml")
            files[name].write_text(text, encoding="utf-8")
        for round_no in range(args.repeat):
            control = Path(tmp) / f"cp-{round_no}"  # no master connection left from an earlier round
            control.mkdir()
            for play in PLAYS:
                for conn, (extra, env) in CONNECTIONS.items():
                    seconds = timed(files[play], extra, env, control)
                    times.setdefault((play, conn), []).append(seconds)
                    print(f"round {round_no + 1}: {play:15} {conn:24} {seconds:6.2f} s", file=sys.stderr)
    text = "\n".join(report(times, args.repeat))
    print(text)
    write_results(args.output, text)


def report(times: dict[tuple[str, str], list[float]], repeat: int) -> list[str]:
    load = os.getloadavg()[0]
    lines = ["# SSH vs the Docker connection", "",
             f"The same no-op plays on {HOST} (Debian 12, a host of molecule/cluster), ansible-playbook's wall time, "
             f"median of {repeat} runs (min-max), taken in turn; load average at the end {load:.1f} on 2 cores. "
             "Become through sudo in every row. `bench/ssh_vs_docker.py` (its docstring says how).", "",
             "| play | connection | median s | min-max s | vs docker |", "|---|---|---:|---:|---:|"]
    for play in PLAYS:
        base = statistics.median(times[(play, "docker")])
        for conn in CONNECTIONS:
            got = times[(play, conn)]
            med = statistics.median(got)
            lines.append(f"| {play} | {conn} | {med:.2f} | {min(got):.2f}-{max(got):.2f} | "
                         f"{'' if conn == 'docker' else f'{med - base:+.2f} s ({med / base:.2f}x)'} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
