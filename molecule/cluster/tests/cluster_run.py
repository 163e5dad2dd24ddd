"""Runs against the cluster scenario's environment, the way an operator's machine runs them: `slipway` (or
ansible-playbook for what slipway has no command for) in the run's operations directory (prepare.yml writes it:
the repository's ansible.cfg with inventories/cluster as its only inventory, the repository's playbooks, the pinned
known_hosts), over SSH with the run's key.

Used by converge.yml (`python cluster_run.py provision`: one JSON line with the exit code, the changed count per
host from ansible-runner's stats event, and the output's tail), by the tests and by bench/ssh_vs_docker.py.
Every child gets a scrubbed environment: Molecule's own ANSIBLE_* settings (its inventory, its ansible.cfg) would
otherwise reach ansible-playbook through slipway's allow-list and point it at Molecule's inventory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[3]
ENV = "cluster"
HOSTS = ("cluster-edge", "cluster-app-1", "cluster-app-2", "cluster-data")
KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME", "PYTHONPATH", "VIRTUAL_ENV")
BIN = Path(sys.executable).parent  # the virtualenv's bin/: slipway and ansible-playbook beside this python


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


def environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment: the basics only (no ANSIBLE_*, MOLECULE_*, SLIPWAY_* or agent of the caller)."""
    env = {k: v for k, v in os.environ.items() if k in KEEP}
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", os.defpath)])
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    changed: dict[str, int]  # per host, from the run's stats (empty when the run had none)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def stats_changed(artifacts: Path) -> dict[str, int]:
    """The `changed` count per host of the run's last playbook_on_stats event (ansible-runner's job_events)."""
    changed: dict[str, int] = {}
    for path in sorted(artifacts.rglob("job_events/*.json")):
        event = json.loads(path.read_text(encoding="utf-8"))
        if event.get("event") == "playbook_on_stats":
            changed = {str(h): int(n) for h, n in (event.get("event_data", {}).get("changed") or {}).items()}
    return changed


def slipway(*args: str, timeout: int = 1200, extra_env: Mapping[str, str] | None = None) -> Run:
    """`slipway <args> --env cluster --project-dir ops/ --no-notify` with SLIPWAY_SSH_PRIVATE_KEY set; the
    changed counts come from the run's artifacts (kept in a temporary directory)."""
    with tempfile.TemporaryDirectory(prefix="cluster-artifacts-") as artifacts:
        env = environ({"SLIPWAY_SSH_PRIVATE_KEY": key_file().read_text(encoding="utf-8"), **(extra_env or {})})
        done = subprocess.run(
            [str(BIN / "slipway"), *args, "--env", ENV, "--project-dir", str(ops_dir()), "--no-notify",
             "--artifacts-dir", artifacts],
            capture_output=True, text=True, env=env, timeout=timeout, check=False,
        )
        return Run(done.returncode, done.stdout, done.stderr, stats_changed(Path(artifacts)))


def playbook(path: str | Path, *args: str, extra_env: Mapping[str, str] | None = None,
             timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """ansible-playbook in the operations directory (its ansible.cfg: pipelining, ControlPersist) with the run's
    key; `args` may add -i, -l, -e, -c."""
    env = environ({"ANSIBLE_PRIVATE_KEY_FILE": str(key_file()), "ANSIBLE_NOCOLOR": "1", **(extra_env or {})})
    return subprocess.run(
        [str(BIN / "ansible-playbook"), str(path), *args],
        capture_output=True, text=True, env=env, cwd=ops_dir(), timeout=timeout, check=False,
    )


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
