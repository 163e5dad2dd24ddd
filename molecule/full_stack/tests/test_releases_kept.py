"""Releases kept and pruned on a real host (issue 15): jotter and notes-api share the image repository
slipway/notes-api. With app_release_keep_releases=2, two jotter rollouts keep exactly two jotter releases; the
tags that were once live for jotter and that no service keeps go, the ones notes-api keeps stay, and so do the
images of failed releases (a retry needs them)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from scenario_tools import RunPlaybook

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks"
REPOSITORY = "slipway/notes-api"


def deploy(run_playbook: RunPlaybook, version: str) -> str:
    result: subprocess.CompletedProcess[str] = run_playbook(
        PLAYBOOKS / "deploy.yml", "-e", "env=local", "-e", "service=jotter", "-e", f"version={version}", "-e",
        "app_release_keep_releases=2")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def state(host: Any, service: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(host.check_output(f"cat /var/lib/slipway/services/{service}/state.json"))
    return found


def tags(host: Any) -> set[str]:
    out = host.check_output(f"docker images --format '{{{{.Tag}}}}' {REPOSITORY}")
    return set(out.split())


def once_live(host: Any, service: str) -> set[str]:
    lines = host.check_output(f"cat /var/lib/slipway/services/{service}/history.jsonl").splitlines()
    return {json.loads(line)["version"] for line in lines if json.loads(line)["result"] in ("deployed", "rolled-back")}


def test_two_rollouts_keep_two_releases_and_prune_the_rest(host: Any, run_playbook: RunPlaybook) -> None:
    before = tags(host)
    for version in ("v1.0.0", "v2.0.0"):
        deploy(run_playbook, version)

    jotter, notes = state(host, "jotter"), state(host, "notes-api")
    assert [r["version"] for r in jotter["releases"]] == ["v2.0.0", "v1.0.0"]
    kept = {r["image"].rpartition(":")[2] for s in (jotter, notes)
            for r in [s["live"], s["kept"], *(s.get("releases") or [])] if r}
    after = tags(host)
    gone = before - after
    assert gone, (before, after)  # jotter's older releases (v2.0.0-slow, v2.1.0) were live once and are kept by none
    assert gone <= once_live(host, "jotter") - kept
    assert kept <= after  # every release any service keeps still has its image
    failed_only = {t for t in before if "bad" in t}
    assert failed_only and failed_only <= after  # never live: left for a retry
    containers = host.check_output("docker ps -a --filter label=slipway.service=jotter --format '{{.Names}}'").split()
    assert sorted(containers) == ["jotter-blue", "jotter-green"]
