"""Run `slipway` or ansible-playbook against an SSH environment the way an operator's machine does: from an
operations directory (a repository: ansible.cfg, playbooks/, inventories/), with a private key from a file, in a
scrubbed environment. Shared by the Molecule scenario `cluster` (molecule/cluster/tests/cluster_run.py binds it to
the run's directory), the cluster demo (scripts/demo_cluster.py) and the benches (bench/cluster_bench.py,
bench/ssh_vs_docker.py).

Every child gets a scrubbed environment: the caller's ANSIBLE_* settings (Molecule's inventory and ansible.cfg, for
one) would otherwise reach ansible-playbook through slipway's allow-list and point it at another inventory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME", "PYTHONPATH", "VIRTUAL_ENV")
BIN = Path(sys.executable).parent  # the virtualenv's bin/: slipway and ansible-playbook beside this python


def environ(extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment from `base` (default: this process's): the basics only (no ANSIBLE_*, MOLECULE_*,
    SLIPWAY_* or agent of the caller), this virtualenv's bin/ first on PATH, then `extra`."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if k in KEEP}
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


def slipway_argv(project: Path, env: str, args: tuple[str, ...], artifacts: str = "") -> list[str]:
    """`slipway <args> --env <env> --project-dir <project> --no-notify [--artifacts-dir A]`, this virtualenv's."""
    return [str(BIN / "slipway"), *args, "--env", env, "--project-dir", str(project), "--no-notify",
            *(["--artifacts-dir", artifacts] if artifacts else [])]


def slipway(project: Path, env: str, key: Path, *args: str, timeout: int = 1200,
            extra_env: Mapping[str, str] | None = None) -> Run:
    """slipway_argv() with SLIPWAY_SSH_PRIVATE_KEY read from `key`, output captured; the changed counts come from
    the run's artifacts (kept in a temporary directory)."""
    with tempfile.TemporaryDirectory(prefix="slipway-artifacts-") as artifacts:
        env_vars = environ({"SLIPWAY_SSH_PRIVATE_KEY": key.read_text(encoding="utf-8"), **(extra_env or {})})
        done = subprocess.run(slipway_argv(project, env, args, artifacts), capture_output=True, text=True,  # noqa: S603
                              env=env_vars, timeout=timeout, check=False)
        return Run(done.returncode, done.stdout, done.stderr, stats_changed(Path(artifacts)))


def playbook(project: Path, key: Path, path: str | Path, *args: str, extra_env: Mapping[str, str] | None = None,
             timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """ansible-playbook in `project` (its ansible.cfg: pipelining, ControlPersist) with the private key `key`;
    `args` may add -i, -l, -e, -c."""
    env = environ({"ANSIBLE_PRIVATE_KEY_FILE": str(key), "ANSIBLE_NOCOLOR": "1", **(extra_env or {})})
    return subprocess.run(  # noqa: S603 - this virtualenv's ansible-playbook, a fixed argument list
        [str(BIN / "ansible-playbook"), str(path), *args],
        capture_output=True, text=True, env=env, cwd=project, timeout=timeout, check=False,
    )


def ops_directory(project: Path, dest: Path, inventory: Path, env: str) -> Path:
    """An operations directory at `dest` whose only environment is `env`, a copy of the inventory directory
    `inventory` (links resolved): the repository's ansible.cfg with that inventory alone and absolute roles and
    collections paths, and the repository's playbooks linked file by file (a linked playbook directory would be
    resolved, and preflight reads playbook_dir/../inventories, which must be this one's). As the Molecule scenario
    `cluster`'s prepare.yml writes its ops/. Returns the environment's directory in it."""
    cfg = (project / "ansible.cfg").read_text(encoding="utf-8")
    for key, value in (("inventory", f"inventories/{env}/hosts.yml"), ("roles_path", str(project / "roles")),
                       ("collections_path", str(project / "collections"))):
        cfg = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", cfg)
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    (dest / "ansible.cfg").write_text(cfg, encoding="utf-8")
    if not (dest / "playbooks").exists():
        shutil.copytree(project / "playbooks", dest / "playbooks", copy_function=os.symlink)
    target = dest / "inventories" / env
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(inventory, target)
    return target


def failing_health_services(services: Mapping[str, Any], service: str) -> dict[str, Any]:
    """A copy of the services registry `services` in which `service` fails its health gate (the sample's
    FAIL_HEALTH): put into one host's host_vars, that host alone fails the gate of the next rollout."""
    entry = dict(services[service])
    entry["env"] = {**(entry.get("env") or {}), "FAIL_HEALTH": "true"}
    return {**services, service: entry}
