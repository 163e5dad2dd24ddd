"""bench/move_to_three.py without Docker: the runbook's inventory edits (read back with Ansible's own inventory and
checked by the contract's topology rules, as preflight checks them), what `slipway status --json` says is live, how a
step is timed and counted against the load, the page it writes; and scripts/ops_run.py's operations directory."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader

from slipway_core import topology
from slipway_core.contract import InputRefused

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
move = importlib.import_module("move_to_three")
ops_run = importlib.import_module("ops_run")
rollout_bench = importlib.import_module("rollout_bench")

ENV = move.ENV
VM = move.VM


def template() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((move.TEMPLATE / "hosts.yml").read_text(encoding="utf-8"))
    return data


def as_ansible_reads_it(inventory: dict[str, Any], tmp_path: Path) -> tuple[dict[str, list[str]],
                                                                             dict[str, dict[str, Any]]]:
    """The groups (group -> hosts) and each host's variables, read by Ansible's own inventory."""
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    manager = InventoryManager(loader=DataLoader(), sources=[str(path)])
    groups = {name: [h.name for h in group.get_hosts()] for name, group in manager.groups.items()}
    return groups, {h.name: h.get_vars() for h in manager.get_hosts()}


def roles(inventory: dict[str, Any], tmp_path: Path) -> dict[str, list[str]]:
    groups, host_vars = as_ansible_reads_it(inventory, tmp_path)
    found = topology.topology(ENV, groups)
    topology.check_hosts(ENV, found, host_vars)
    return found


def test_the_template_is_one_vm_holding_every_role(tmp_path: Path) -> None:
    found = roles(template(), tmp_path)
    assert {role: found[role] for role in ("edge", "app", "data", "monitoring")} == {
        "edge": [VM], "app": [VM], "data": [VM], "monitoring": [VM]}
    _, host_vars = as_ansible_reads_it(template(), tmp_path)
    assert "slipway_private_address" not in host_vars[VM]  # a one-VM inventory as it is written before the move


def test_step_2_puts_the_vm_in_every_role_and_the_new_vms_in_app_each_with_its_private_address(tmp_path: Path) -> None:
    three = move.three_vms(template(), ENV, VM, move.ADDRESSES)
    found = roles(three, tmp_path)
    assert found["edge"] == [VM]
    assert found["data"] == [VM]
    assert found["monitoring"] == [VM]
    assert found["app"] == [VM, *move.APPS]
    _, host_vars = as_ansible_reads_it(three, tmp_path)
    assert {h: v["slipway_private_address"] for h, v in host_vars.items()} == move.ADDRESSES
    assert host_vars[VM]["ansible_host"] == move.ADDRESSES[VM]
    assert env_group_of(three)["vars"] == env_group_of(template())["vars"]  # the environment's vars are kept
    assert "children" not in env_group_of(template())  # the template itself is not edited


def env_group_of(inventory: dict[str, Any]) -> dict[str, Any]:
    group: dict[str, Any] = inventory["all"]["children"][ENV]
    return group


def test_step_5_takes_the_vm_out_of_app_only(tmp_path: Path) -> None:
    three = move.three_vms(template(), ENV, VM, move.ADDRESSES)
    moved = move.out_of_app(three, ENV, VM)
    found = roles(moved, tmp_path)
    assert found["app"] == list(move.APPS)
    assert (found["edge"], found["data"], found["monitoring"]) == ([VM], [VM], [VM])
    assert VM in env_group_of(three)["children"][f"{ENV}_app"]["hosts"]  # step 2's inventory is not edited
    with pytest.raises(move.MoveError, match="is not in move_three_app"):
        move.out_of_app(moved, ENV, VM)


def test_two_hosts_without_roles_would_be_refused_by_the_same_rules(tmp_path: Path) -> None:
    """The check above can fail: the contract refuses the new VMs added without role groups."""
    two = template()
    env_group_of(two)["hosts"]["slipway-mv-app-1"] = {"ansible_host": "10.215.0.11"}
    with pytest.raises(InputRefused, match="no host roles"):
        roles(two, tmp_path)


def test_status_says_which_hosts_serve_which_release() -> None:
    status = {"records": [
        {"host": "slipway-mv-app-1", "service": "notes-api", "colour": "green", "version": "v1.0.0", "healthy": True},
        {"host": "slipway-mv-app-2", "service": "notes-api", "colour": "green", "version": "v1.0.0",
         "healthy": False, "message": "no live colour"},
        {"host": "slipway-mv-app-1", "service": "other", "colour": "blue", "version": "v9", "healthy": True},
    ]}
    assert move.live_hosts(status, "notes-api") == {"slipway-mv-app-1": "v1.0.0 green",
                                                    "slipway-mv-app-2": "unhealthy: no live colour"}
    assert move.live_hosts({"records": []}, "notes-api") == {}


def test_a_step_is_timed_and_counts_only_the_requests_made_while_it_ran() -> None:
    stats = rollout_bench.Stats()
    stats.add(0.01, 200)
    stats.add(0.01, None, "ConnectionResetError")

    def action() -> str:
        stats.add(0.01, 200)
        stats.add(0.01, 503)
        stats.add(0.01, None, "ConnectionResetError")
        return "found"

    step = move.Step("3", "provision")
    assert move.run_step(step, action, stats)
    assert (step.result, step.requests, step.non_2xx, step.conn_errors) == ("ok: found", 3, 1, 1)
    assert step.errors == {"HTTP 503": 1, "ConnectionResetError": 1}


def test_a_failing_step_reports_what_went_wrong() -> None:
    def action() -> str:
        raise move.MoveError("slipway provision exited 3: unreachable")

    step = move.Step("3", "provision")
    assert not move.run_step(step, action, rollout_bench.Stats())
    assert step.result == "FAILED: slipway provision exited 3: unreachable"


def test_the_page_has_a_row_per_step_and_the_moves_totals() -> None:
    stats = rollout_bench.Stats()
    for _ in range(10):
        stats.add(0.002, 200)
    steps = [move.Step("0b", "provision", 100.0, "ok", 0, 0, 0),
             move.Step("3", "`slipway provision`", 60.0, "ok", 6, 0, 0),
             move.Step("4", "deploy", 20.0, "ok | x", 4, 1, 2, {"HTTP 503": 1})]
    lines = move.table(steps, stats, {"started": "2026-12-03 15:40 UTC", "load_before": 3.0, "load_after": 4.0,
                                      "clients": "2 + 2 clients", "others": ""})
    page = "\n".join(lines)
    assert "| 3 | `slipway provision` | 60.0 | ok | 6 | 0 | 0 |" in page
    assert "| 4 | deploy | 20.0 | ok / x | 4 | 1 | 2 (HTTP 503 x1) |" in page  # a cell never breaks the table
    assert "The move (steps 1-6): 80 s, 10 requests, 1 non-2xx, 2 connection errors." in page  # 0b is not the move
    assert "other containers running: none" in page


def test_the_operations_directory_has_the_environment_alone_and_the_repositorys_playbooks(tmp_path: Path) -> None:
    ops = tmp_path / "ops"
    env_dir = ops_run.ops_directory(ROOT, ops, move.TEMPLATE, ENV)
    assert env_dir == ops / "inventories" / ENV
    cfg = (ops / "ansible.cfg").read_text(encoding="utf-8")
    assert f"inventory = inventories/{ENV}/hosts.yml\n" in cfg
    assert f"roles_path = {ROOT / 'roles'}\n" in cfg
    assert f"collections_path = {ROOT / 'collections'}\n" in cfg
    assert (ops / "playbooks" / "deploy.yml").is_symlink()
    assert (ops / "playbooks" / "deploy.yml").resolve() == ROOT / "playbooks" / "deploy.yml"
    assert not (ops / "playbooks").is_symlink()  # preflight reads playbook_dir/../inventories: this directory's
    images = env_dir / "group_vars" / ENV / "images.yml"
    assert not images.is_symlink()
    assert "postgresql_image" in images.read_text(encoding="utf-8")
    (env_dir / "hosts.yml").write_text("edited\n", encoding="utf-8")
    (env_dir / "known_hosts").write_text("10.215.0.10 ssh-ed25519 AAAA\n", encoding="utf-8")
    ops_run.ops_directory(ROOT, ops, move.TEMPLATE, ENV)  # again: the environment starts from the template again
    assert (env_dir / "hosts.yml").read_text(encoding="utf-8") == (move.TEMPLATE / "hosts.yml").read_text(
        encoding="utf-8")
    assert not (env_dir / "known_hosts").exists()


def test_the_move_runs_on_hosts_and_a_network_of_its_own() -> None:
    demo = importlib.import_module("demo_cluster")
    assert move.SITE.network not in (demo.NETWORK, "cluster-private")
    assert move.SITE.subnet == "10.215.0.0/24"
    assert move.HTTP_PORT not in (demo.HTTP_PORT, 8080, 8082)
    assert all(name.startswith("slipway-mv-") for name in move.ADDRESSES)
    assert move.SITE.key != demo.KEY


def test_the_load_clients_are_rollout_benchs(monkeypatch: pytest.MonkeyPatch) -> None:
    """start_load (cluster_bench's) runs rollout_bench's client against the VM's edge port only."""
    seen: list[tuple[Any, ...]] = []
    monkeypatch.setattr(importlib.import_module("cluster_bench"), "client", lambda *a: seen.append(a))
    args = argparse.Namespace(kept_alive=1, new_connection=1, interval=0.5)
    _, threads = move.start_load((move.HTTP_PORT,), args, threading.Event())
    for thread in threads:
        thread.join(timeout=5)
    assert sorted(a[0] for a in seen) == ["kept", "new"]
    assert {a[1] for a in seen} == {move.HTTP_PORT}
    assert json.dumps(sorted({a[2] for a in seen})) == json.dumps([move.DOMAIN])
