"""The app_release role in batches, through the real deploy.yml (ansible-playbook, no host touched; docs/rollout.md,
"All at once or in batches"): every app host runs on the controller (the local connection, no become) with
app_release_command_path pointed at a fake host program that records each call and answers as slipway-release does.
It shows what the controller asks of each host: the first app host alone migrates (after the backup on the data
host), a later batch's host runs the other steps only; a failing host ends the rollout (or rollback) after its
batch, and the failure names which host runs which release.
"""

from __future__ import annotations

import stat
import sys
import textwrap
from pathlib import Path

import yaml

from test_batches_playbooks import batched  # isort: skip
from test_topology_playbooks import run  # isort: skip

# Answers as slipway-release gives them (the contract's result schema): begin leaves every step to `run`; `run` ends
# deployed, or fails in phase health on the host named in fail_on; finish answers that failure after the cleanup.
FAKE = """\
#!{python}
import json, os, sys
argv = sys.argv[1:]
root = argv[argv.index("--root") + 1]
host, base = os.path.basename(root), os.path.dirname(root)
if argv[argv.index("--root") + 2:argv.index("--root") + 4] == ["jobs", "sync"]:  # no job here: nothing to change
    print(json.dumps({{"changed": False, "plan": False}}))
    sys.exit(0)
command = next(a for a in argv if a in ("begin", "run", "finish", "rollback"))
service = argv[argv.index(command) + 1]
steps = argv[argv.index("--steps") + 1] if "--steps" in argv else ""
with open(os.path.join(base, "calls.log"), "a") as log:
    log.write(f"{{host}} {{command}} {{steps}}\\n")
fail_on = open(os.path.join(base, "fail_on")).read().strip()
answer = {{"service": service, "version": "v2", "previous_version": "v1", "colour": "green"}}
if command == "begin":
    answer.update(result="continue", todo=["backup", "migrate", "start", "health", "switch", "drain", "record"])
elif command in ("run", "rollback") and host == fail_on:
    print(json.dumps({{**answer, "result": "failed", "failed_phase": "health", "message": "gate failed"}}))
    sys.exit(1)
elif command == "run":
    answer.update(result="deployed")
elif command == "rollback":
    answer.update(result="deployed", version="v1", previous_version="v2", colour="blue")
else:  # finish: after a rollback, the release it left serving is the newer one
    rolled_back = f"{{host}} rollback " in open(os.path.join(base, "calls.log")).read()
    # Its message spans lines, as a failed gate's does (the container's last log lines).
    answer.update(result="failed", failed_phase="health", message="health gate failed on " + host + ":\\nlog: down",
                  previous_version="v2" if rolled_back else "v1")
print(json.dumps(answer))
"""


def project_with_fake(tmp_path: Path, setting: str, fail_on: str) -> tuple[Path, Path]:
    root = batched(tmp_path, setting)
    base = tmp_path / "hosts"
    base.mkdir()
    (base / "fail_on").write_text(fail_on, encoding="utf-8")
    fake = tmp_path / "fake-slipway-release"
    fake.write_text(FAKE.format(python=Path(sys.executable)), encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    backup = tmp_path / "fake-slipway-pg-backup"
    backup.write_text(f"#!/bin/sh\necho \"data backup $1\" >> {base}/calls.log\n", encoding="utf-8")
    backup.chmod(backup.stat().st_mode | stat.S_IEXEC)
    group_vars = root / "inventories" / "demo" / "group_vars" / "demo" / "main.yml"
    settings = yaml.safe_load(group_vars.read_text(encoding="utf-8"))
    settings.update({
        "ansible_connection": "local", "ansible_become": False, "ansible_python_interpreter": sys.executable,
        "app_release_command_path": str(fake), "app_release_backup_command": str(backup),
        "app_release_jobs_unit_dir": str(tmp_path / "units"),
        "app_release_state_dir": str(base) + "/{{ inventory_hostname }}",
        "slipway_services": {"api": {"image": "registry.example.com/team/api", "version": "v2", "port": 8000,
                                     "domain": "api.example.com", "migrate_command": ["alembic", "upgrade", "head"]}},
    })
    group_vars.write_text(yaml.safe_dump(settings), encoding="utf-8")
    # The hosts reach nothing: hosts.yml's own connection is the Docker one; group_vars win over the group's vars.
    return root, base


def calls(base: Path) -> list[str]:
    path = base / "calls.log"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_only_the_first_app_host_backs_up_and_migrates(tmp_path: Path) -> None:
    """The backup runs once, on the data host (the postgresql role's entry point is there), before app-1 migrates."""
    root, base = project_with_fake(tmp_path, "1", fail_on="none")
    result = run(root, "deploy.yml")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "changed: [app-1 -> data-1]" in result.stdout
    assert calls(base) == [
        "app-1 begin ", "data backup api", "app-1 run migrate,start,health,switch,drain,record",
        "app-2 begin ", "app-2 run start,health,switch,drain,record",
        "app-3 begin ", "app-3 run start,health,switch,drain,record",
    ]


def test_a_failing_host_stops_the_rollout_and_the_failure_names_which_host_runs_which_release(tmp_path: Path) -> None:
    root, base = project_with_fake(tmp_path, "1", fail_on="app-2")
    result = run(root, "deploy.yml")
    assert result.returncode != 0
    assert calls(base) == [
        "app-1 begin ", "data backup api", "app-1 run migrate,start,health,switch,drain,record",
        "app-2 begin ", "app-2 run start,health,switch,drain,record", "app-2 finish ",
    ]  # app-3, a later batch, is never asked anything
    message = " ".join(result.stdout.split())
    assert textwrap.dedent("""\
        api after the batches: app-1: v2 (deployed); app-2: failed in phase health, v1 still serving; app-3: not
        reached (a later batch), left as it was""").replace("\n", " ") in message, result.stdout[-4000:]
    # First in the message: the CLI's progress line shows its first 300 characters.
    assert message.index("api after the batches:") < message.index("api: rollout failed in phase health")


def test_a_rollback_in_batches_stops_after_a_failing_host_too(tmp_path: Path) -> None:
    root, base = project_with_fake(tmp_path, "1", fail_on="app-2")
    result = run(root, "rollback.yml", "-e", "service=api")
    assert result.returncode != 0
    assert calls(base) == ["app-1 rollback ", "app-2 rollback ", "app-2 finish "]
    message = " ".join(result.stdout.split())
    assert ("api after the batches: app-1: v1 (deployed); app-2: failed in phase health, v2 still serving; app-3: "
            "not reached (a later batch), left as it was") in message, result.stdout[-4000:]
