"""The rollout in batches through the real playbooks (ansible-playbook, no host touched; docs/rollout.md, "All at
once or in batches"): preflight refuses a bad slipway_rollout_batch_size and a topology batches cannot work on, before
any host task; deploy.yml's and rollback.yml's one-host play takes every app host (each its own edge) and the cluster
plays none; and the play's own header (hosts, serial, max_fail_percentage), run with tasks that touch nothing, makes
the batches Ansible runs: the first app host alone, then batches of the setting, and a failing host stops the
rollout there (a later batch never starts).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from test_topology_playbooks import (  # isort: skip
    CLUSTER_PLAYS, PROJECT, TOPOLOGY_TASK, failed_message, failed_task, hosts_yml, project, recap_hosts, run)

ADDRESSES = {"app-1": "10.0.1.11", "app-2": "10.0.1.12", "app-3": "10.0.1.14", "app-4": "10.0.1.15",
             "data-1": "10.0.1.13", "edge-1": "10.0.1.10"}


def fleet(apps: tuple[str, ...] = ("app-1", "app-2", "app-3"), edges: tuple[str, ...] | None = None) -> str:
    """The children of `demo`: the app hosts each their own edge (unless `edges`), one data host."""
    def group(role: str, names: tuple[str, ...]) -> str:
        lines = "".join(f"\n      {name}: {{slipway_private_address: {ADDRESSES[name]}}}" for name in names)
        return f"  demo_{role}:\n    hosts:{lines}\n"

    return ("children:\n" + group("edge", apps if edges is None else edges) + group("app", apps)
            + group("data", ("data-1",)) + group("monitoring", ("data-1",)))


def batched(tmp_path: Path, setting: str | None, **layout: Any) -> Path:
    """A throw-away project whose environment sets slipway_rollout_batch_size (a YAML value) in its group_vars."""
    root = project(tmp_path, hosts_yml(fleet(**layout)))
    if setting is not None:
        group_vars = root / "inventories" / "demo" / "group_vars" / "demo"
        group_vars.mkdir(parents=True)
        (group_vars / "main.yml").write_text(f"---\nslipway_rollout_batch_size: {setting}\n", encoding="utf-8")
    return root


REFUSED: list[tuple[str, str, dict[str, Any], str]] = [
    ("a bad setting", "'all'", {}, "slipway_rollout_batch_size 'all' is not a batch size: set "
     "slipway_rollout_batch_size to a whole number of app hosts per batch (1 or more, such as 1) or a percentage of "
     "them (such as 25%), or remove it to roll every app host out at once, in inventories/demo/group_vars/demo/"),
    ("an edge that is not an app host", "1", {"apps": ("app-1", "app-2"), "edges": ("app-1", "app-2", "edge-1")},
     "slipway_rollout_batch_size is set, but edge host edge-1 of environment demo is not an app host"),
    ("an app host without its own edge", "'50%'", {"apps": ("app-1", "app-2"), "edges": ("app-1",)},
     "slipway_rollout_batch_size is set, but app host app-2 of environment demo has no edge of its own"),
]


@pytest.mark.parametrize(("case", "setting", "layout", "message"), REFUSED, ids=[case[0] for case in REFUSED])
def test_preflight_refuses_before_any_host(tmp_path: Path, case: str, setting: str, layout: dict[str, Any],
                                           message: str) -> None:
    result = run(batched(tmp_path, setting, **layout), "deploy.yml")
    assert result.returncode != 0, case
    assert message in failed_message(result.stdout)
    assert failed_task(result.stdout) == TOPOLOGY_TASK
    assert recap_hosts(result.stdout) == ["localhost"]


STUB_TASKS = [
    {"name": "Batch", "ansible.builtin.debug": {"msg": "batch {{ ansible_play_batch | join(',') }}"}},
    {"name": "Gate", "ansible.builtin.fail": {"msg": "gate failed"}, "when": "inventory_hostname == fail_on"},
]


def stubbed(root: Path) -> None:
    """Every play of deploy.yml, rollback.yml and cluster/rollout.yml in the throw-away project keeps its header
    (hosts, serial, max_fail_percentage) and gets two tasks that touch nothing: one names its batch, one
    fails on the host `fail_on` (an extra variable). Preflight stays as it is."""
    for name in ("deploy.yml", "rollback.yml", "cluster/rollout.yml"):
        plays: list[dict[str, Any]] = yaml.safe_load((PROJECT / "playbooks" / name).read_text(encoding="utf-8"))
        for play in plays:
            if "hosts" in play:
                for key in ("roles", "tasks", "vars"):
                    play.pop(key, None)
                play["tasks"] = STUB_TASKS
        (root / "playbooks" / name).write_text(yaml.safe_dump(plays, sort_keys=False), encoding="utf-8")


def ran(stdout: str) -> list[str]:
    """"play: batch" for each host each stub ran on, in the order they ran."""
    out = []
    for block in stdout.split("\nPLAY [")[1:]:
        name = block.split("]", 1)[0]
        out += [f"{name}: {batch}" for batch in re.findall(r"^ +msg: batch ([a-z0-9,-]+)$", block, flags=re.MULTILINE)]
    return out


def test_the_one_host_plays_keep_max_fail_percentage_0() -> None:
    """Any failed host in a batch stops the play: no later batch starts (Ansible stops when more than this)."""
    for name, play_name in (("deploy.yml", "Roll out"), ("rollback.yml", "Roll back")):
        plays = yaml.safe_load((PROJECT / "playbooks" / name).read_text(encoding="utf-8"))
        assert next(p for p in plays if p.get("name") == play_name)["max_fail_percentage"] == 0


APPS = ("app-1", "app-2", "app-3", "app-4")


@pytest.mark.parametrize(("setting", "fail_on", "batches", "reached"), [
    ("1", "app-2", ["app-1", "app-2"], ["app-1", "app-2"]),
    # app-3 of the same batch goes on; app-4's batch never starts (max_fail_percentage: 0)
    ("2", "app-2", ["app-1", "app-2,app-3"], ["app-1", "app-2", "app-3"]),
    ("1", "app-1", ["app-1"], ["app-1"]),
    ("'50%'", "none", ["app-1", "app-2,app-3", "app-4"], list(APPS)),
    ("'100%'", "none", ["app-1", "app-2,app-3,app-4"], list(APPS)),
])
@pytest.mark.parametrize(("playbook", "play", "more"), [("deploy.yml", "Roll out", ()),
                                                        ("rollback.yml", "Roll back", ("-e", "service=api"))])
def test_the_batches_ansible_runs_and_a_failing_host_stops_the_rollout(  # noqa: PLR0917 - the cases
        tmp_path: Path, playbook: str, play: str, more: tuple[str, ...], setting: str, fail_on: str,
        batches: list[str], reached: list[str]) -> None:
    """The first app host alone, then batches of the setting; a failing host ends the run after its batch (a host of
    a later batch runs nothing), and no play of the rollout at once runs."""
    root = batched(tmp_path, setting, apps=APPS)
    stubbed(root)
    result = run(root, playbook, "-e", f"fail_on={fail_on}", *more)
    assert ran(result.stdout) == [f"{play}: {batch}" for batch in batches for _ in batch.split(",")], result.stdout
    assert sorted(recap_hosts(result.stdout)) == sorted(["localhost", *reached])
    assert (result.returncode != 0) == (fail_on != "none"), result.stdout


def test_without_the_setting_the_same_fleet_rolls_out_at_once(tmp_path: Path) -> None:
    """The fleet of each app host its own edge, no setting: the cluster rollout's plays on every app host. The plays
    between begin and settle take their hosts from the app hosts' answers (slipway.core.cluster_play_hosts), which
    the stub tasks do not give: they have no host here."""
    root = batched(tmp_path, None, apps=("app-1", "app-2"))
    stubbed(root)
    result = run(root, "deploy.yml", "-e", "fail_on=none")
    assert result.returncode == 0, result.stdout
    # settle: both app hosts and the monitoring host (data-1), which writes Prometheus' targets there
    assert [line.split(": ")[0] for line in ran(result.stdout)] == [CLUSTER_PLAYS[0]] * 2 + [CLUSTER_PLAYS[-1]] * 3
