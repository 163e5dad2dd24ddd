"""Runs against the cluster scenario's environment, the way an operator's machine runs them: `slipway` (or
ansible-playbook for what slipway has no command for) in the run's operations directory (prepare.yml writes it:
the repository's ansible.cfg with inventories/cluster as its only inventory, the repository's playbooks, the pinned
known_hosts), over SSH with the run's key. The running is scripts/ops_run.py's (shared with the cluster demo and
the benches); this module binds it to the Molecule run's directory.

Used by converge.yml (`python cluster_run.py provision`: one JSON line with the exit code, the changed count per
host from ansible-runner's stats event, and the output's tail), by the tests and by bench/ssh_vs_docker.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(PROJECT / "scripts"))
import ops_run  # noqa: E402 - scripts/, on sys.path from the line above
from ops_run import BIN, Run, environ, stats_changed  # noqa: E402

__all__ = ["BIN", "ENV", "HOSTS", "Run", "environ", "known_hosts", "ops_dir", "playbook", "run_dir", "slipway",
           "stats_changed"]
ENV = "cluster"
HOSTS = ("cluster-edge", "cluster-app-1", "cluster-app-2", "cluster-data")


def run_dir() -> Path:
    """This Molecule run's ephemeral directory."""
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


def ops_dir() -> Path:
    """The run's operations directory (prepare.yml)."""
    return run_dir() / "ops"


def key_file() -> Path:
    """The run's private key for deploy (prepare.yml; never committed)."""
    return run_dir() / "ssh" / "id_ed25519"


def known_hosts() -> Path:
    """The pinned host keys the inventory's ssh arguments name."""
    return ops_dir() / "inventories" / ENV / "known_hosts"


def slipway(*args: str, timeout: int = 1200, extra_env: Mapping[str, str] | None = None) -> Run:
    """`slipway <args> --env cluster --project-dir ops/ --no-notify` with SLIPWAY_SSH_PRIVATE_KEY set (ops_run)."""
    return ops_run.slipway(ops_dir(), ENV, key_file(), *args, timeout=timeout, extra_env=extra_env)


def playbook(path: str | Path, *args: str, extra_env: Mapping[str, str] | None = None,
             timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """ansible-playbook in the operations directory with the run's key (ops_run)."""
    return ops_run.playbook(ops_dir(), key_file(), path, *args, extra_env=extra_env, timeout=timeout)


def main(argv: Sequence[str]) -> int:
    """`provision`: run slipway provision and print one JSON line (converge.yml reads it)."""
    if list(argv) != ["provision"]:
        sys.stderr.write("usage: cluster_run.py provision\n")
        return 2
    run = slipway("provision")
    print(json.dumps({"rc": run.returncode, "changed": run.changed,
                      "stdout": run.stdout[-6000:], "stderr": run.stderr[-6000:]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
