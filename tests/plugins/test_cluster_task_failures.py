"""Each host's failure in a cluster rollout phase shows as a failure, and the play goes on.

The cluster rollout's phase tasks (roles/app_release/tasks/cluster_*.yml) register what each host answered, and the
verdict after each play decides for every host at once (slipway.core.cluster_verdict): a host's failure must not end
its play. They had `failed_when: false`, so a gate that failed on an app host showed as `health ok` in the CLI's
progress and as ok in Ansible's own output. Each such task now fails on its own result (the host program's exit
status) with `ignore_errors: true`: shown as failed (Ansible's `...ignoring`, the CLI's phase line), the play goes on.
The settle's call is the exception: the release is live everywhere by then, so neither the old colour's stop failing
nor a monitoring host that cannot take the scrape files is a failure of the rollout; only the calls that ride with the
drain, the rollout's record and the jobs' sync, fail it (slipway.core.batch_failed), as their own task did before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from plugin_loader import load_filter  # isort: skip

ROOT = Path(__file__).resolve().parents[2]
# settle: the release is live everywhere by then; only the record and the jobs' sync in the same call fail the host
SETTLE = {"__app_release_cluster_drain": ("__app_release_on_app and __app_release_cluster_drain"
                                          " | slipway.core.batch_failed(['record-rollout', 'jobs']) | length > 0")}


def registers() -> list[str]:
    """The registers a host's record is folded from (the cluster filter's REGISTERS)."""
    return [name for name, _phase, _step in load_filter("cluster").REGISTERS]


def phase_tasks() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted((ROOT / "roles/app_release/tasks").glob("cluster_*.yml")):
        for task in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            if task.get("register") in registers():
                found[task["register"]] = task
    return found


def test_every_register_the_verdict_reads_has_its_task() -> None:
    assert len(registers()) >= 7
    assert set(phase_tasks()) == set(registers())


def test_each_phase_task_fails_on_its_own_result_and_the_play_goes_on() -> None:
    wrong = []
    for register, task in phase_tasks().items():
        if register in SETTLE:
            if " ".join(str(task.get("failed_when")).split()) != SETTLE[register] or task.get("ignore_errors"):
                wrong.append(f"{register}: failed_when {task.get('failed_when')!r}, expected {SETTLE[register]!r}")
            continue
        if task.get("failed_when") != f"{register}.rc | default(1) != 0" or task.get("ignore_errors") is not True:
            wrong.append(f"{register}: failed_when {task.get('failed_when')!r}, ignore_errors "
                         f"{task.get('ignore_errors')!r}")
    assert wrong == []
