"""The cluster demo's bring-up (scripts/demo_cluster.py) and the shared runner of SSH environments
(scripts/ops_run.py): which hosts, roles, images and settings come from the checked-in inventory, how the host keys
are pinned, how a failing-health override is made, what a run's stats say. No Docker: the pure parts, and the
checked-in inventory itself."""

from __future__ import annotations

import importlib
import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
demo_cluster = importlib.import_module("demo_cluster")
ops_run = importlib.import_module("ops_run")

CLUSTER = {"all": {"children": {"dc": {
    "children": {
        "dc_edge": {"hosts": {"e": {"ansible_host": "10.9.0.10"}}},
        "dc_app": {"hosts": {"slipway-dc-app-1": {"ansible_host": "10.9.0.11"}, "a2": {"ansible_host": "10.9.0.12"}}},
        "dc_data": {"hosts": {"d": {"ansible_host": "10.9.0.13"}}},
        "dc_monitoring": {"hosts": {"d": None}},
    },
    "vars": {"ansible_user": "deploy"},
}}}}


def test_the_hosts_their_roles_images_and_ports_come_from_the_inventory() -> None:
    hosts = {h.name: h for h in demo_cluster.hosts_of(CLUSTER, "dc", http_port=9000)}
    assert list(hosts) == ["e", "slipway-dc-app-1", "a2", "d"]
    assert hosts["d"].roles == ("data", "monitoring")
    assert hosts["d"].address == "10.9.0.13"
    assert [h.http_port for h in hosts.values()] == [9000, None, None, None]  # only the edge publishes
    assert hosts["slipway-dc-app-1"].image == "slipway/test-host-ssh:trixie"  # the Debian 13 host
    assert hosts["a2"].image == "slipway/test-host-ssh:bookworm"


def test_a_one_vm_inventory_is_one_host_with_every_role() -> None:
    (solo,) = demo_cluster.hosts_of({"all": {"children": {"dc": {"hosts": {"s": {"ansible_host": "10.9.0.20"}}}}}},
                                    "dc", http_port=9001)
    assert solo.roles == ("edge", "app", "data", "monitoring")
    assert solo.http_port == 9001


@pytest.mark.parametrize(("inventory", "message"), [
    ({"all": {"children": {"other": {}}}}, "no group 'dc'"),
    ({"all": {"children": {"dc": {"hosts": {"s": {}}}}}}, "host s has no ansible_host"),
])
def test_an_inventory_the_demo_cannot_use_is_refused_naming_the_problem(inventory: dict[str, Any],
                                                                        message: str) -> None:
    with pytest.raises(demo_cluster.DemoError, match=message):
        demo_cluster.hosts_of(inventory, "dc")


def test_each_host_gets_the_images_its_roles_run_and_only_those() -> None:
    hosts = {h.name: h for h in demo_cluster.hosts_of(CLUSTER, "dc")}
    image_vars = {var: f"img/{var}" for role in demo_cluster.ROLE_IMAGES.values() for var in role}
    sample = ["slipway/notes-api:v1.0.0", "slipway/notes-api:v2.0.0"]
    node = "img/prometheus_node_exporter_image"  # every host: the monitoring host scrapes its node exporter
    assert demo_cluster.images_for(hosts["e"], image_vars, sample) == ["img/edge_proxy_image", node]
    assert demo_cluster.images_for(hosts["a2"], image_vars, sample) == [node, *sample]
    data = demo_cluster.images_for(hosts["d"], image_vars, sample)
    assert data[:2] == ["img/postgresql_image", "img/redis_image"] and len(data) == 6
    assert not set(sample) & set(data)


def test_local_host_sh_gets_the_network_address_and_no_port_for_a_host_without_an_edge() -> None:
    hosts = {h.name: h for h in demo_cluster.hosts_of(CLUSTER, "dc", http_port=9000)}
    assert demo_cluster.local_host_env(hosts["a2"], "net") == {
        "SLIPWAY_LOCAL_HOST": "a2", "SLIPWAY_LOCAL_HOST_IMAGE": "slipway/test-host-ssh:bookworm",
        "SLIPWAY_LOCAL_HTTP_PORT": "", "SLIPWAY_LOCAL_NETWORK": "net", "SLIPWAY_LOCAL_ADDRESS": "10.9.0.12"}
    assert demo_cluster.local_host_env(hosts["e"], "net")["SLIPWAY_LOCAL_HTTP_PORT"] == "9000"


def test_host_keys_are_pinned_only_once_every_host_answered() -> None:
    scan = "# 10.9.0.10:22 SSH-2.0-OpenSSH\n10.9.0.10 ssh-ed25519 AAAA\n10.9.0.11 ssh-rsa BBBB\n"
    assert demo_cluster.pinned_keys(scan, ["10.9.0.10", "10.9.0.11", "10.9.0.12"]) is None
    assert demo_cluster.pinned_keys(scan, ["10.9.0.11", "10.9.0.10"]) == [
        "10.9.0.10 ssh-ed25519 AAAA", "10.9.0.11 ssh-rsa BBBB"]


def test_the_checked_in_demo_inventory() -> None:
    """Four hosts on 10.214.0.0/24 (clear of the Molecule scenario's 10.213.0.0/24), one of them Debian 13, each
    role's images known, reached over SSH as deploy with the pinned known_hosts beside the inventory."""
    hosts, image_vars = demo_cluster.read_inventory(demo_cluster.INVENTORY, demo_cluster.ENV)
    assert [(h.name, h.roles) for h in hosts] == [
        ("slipway-dc-edge", ("edge",)), ("slipway-dc-app-1", ("app",)), ("slipway-dc-app-2", ("app",)),
        ("slipway-dc-data", ("data", "monitoring"))]
    assert all(h.address.startswith("10.214.0.") for h in hosts)
    assert [h.name for h in hosts if h.image.endswith(":trixie")] == ["slipway-dc-app-1"]
    for host in hosts:
        demo_cluster.images_for(host, image_vars, [])  # every variable a role needs is there
    raw = yaml.safe_load((demo_cluster.INVENTORY / "hosts.yml").read_text(encoding="utf-8"))
    group_vars = raw["all"]["children"]["demo_cluster"]["vars"]
    assert group_vars["ansible_user"] == "deploy" and group_vars["ansible_become"] is True
    assert "UserKnownHostsFile={{ inventory_dir }}/known_hosts" in group_vars["ansible_ssh_common_args"]
    assert "StrictHostKeyChecking=yes" in group_vars["ansible_ssh_common_args"]
    cfg = (ROOT / "ansible.cfg").read_text(encoding="utf-8")
    assert "inventories/demo_cluster/hosts.yml" in cfg


def test_a_failing_health_override_changes_one_service_only_and_not_the_given_map() -> None:
    services: dict[str, Any] = {"notes-api": {"port": 8000, "env": {"LOG_LEVEL": "info"}}, "other": {"port": 9000}}
    changed = ops_run.failing_health_services(services, "notes-api")
    assert changed["notes-api"]["env"] == {"LOG_LEVEL": "info", "FAIL_HEALTH": "true"}
    assert changed["other"] == services["other"]
    assert services["notes-api"]["env"] == {"LOG_LEVEL": "info"}  # the registry read stays as it was
    assert ops_run.failing_health_services({"s": {}}, "s")["s"]["env"] == {"FAIL_HEALTH": "true"}


def test_the_runs_changed_counts_come_from_its_last_stats_event(tmp_path: Path) -> None:
    events = tmp_path / "run1" / "job_events"
    events.mkdir(parents=True)
    (events / "1-a.json").write_text(json.dumps({"event": "playbook_on_stats",
                                                 "event_data": {"changed": {"h1": 3}}}))
    (events / "2-b.json").write_text(json.dumps({"event": "runner_on_ok"}))
    (events / "3-c.json").write_text(json.dumps({"event": "playbook_on_stats",
                                                 "event_data": {"changed": {"h1": 0, "h2": 1}}}))
    assert ops_run.stats_changed(tmp_path) == {"h1": 0, "h2": 1}
    assert ops_run.stats_changed(tmp_path / "none") == {}


def test_a_child_gets_a_scrubbed_environment_with_this_virtualenv_first() -> None:
    env = ops_run.environ({"X": "1"}, base={"PATH": "/usr/bin", "HOME": "/root", "ANSIBLE_INVENTORY": "/m/inv",
                                            "MOLECULE_FOO": "1", "SLIPWAY_SSH_PRIVATE_KEY": "k", "SSH_AUTH_SOCK": "s"})
    assert env == {"PATH": f"{ops_run.BIN}:/usr/bin", "HOME": "/root", "X": "1"}


def test_slipway_gets_the_key_from_the_file_and_the_environment_and_project_as_arguments(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ops_run.slipway runs this virtualenv's slipway; a stand-in records what it was given."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    record = tmp_path / "record.json"
    script = fake_bin / "slipway"
    script.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                      "seen = {'argv': sys.argv[1:], 'key': os.environ.get('SLIPWAY_SSH_PRIVATE_KEY'),"
                      " 'ansible': [k for k in os.environ if k.startswith('ANSIBLE_')]}\n"
                      f"json.dump(seen, open({str(record)!r}, 'w'))\n"
                      "print('done'); sys.exit(3)\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(ops_run, "BIN", fake_bin)
    monkeypatch.setenv("ANSIBLE_INVENTORY", "/somewhere/else")
    key = tmp_path / "id"
    key.write_text("PRIVATE KEY\n")
    run = ops_run.slipway(tmp_path / "ops", "dc", key, "deploy", "--json")
    assert (run.returncode, run.stdout, run.changed) == (3, "done\n", {})
    seen = json.loads(record.read_text())
    assert seen["argv"][:6] == ["deploy", "--json", "--env", "dc", "--project-dir", str(tmp_path / "ops")]
    assert seen["argv"][6] == "--no-notify" and seen["argv"][7] == "--artifacts-dir"
    assert seen["key"] == "PRIVATE KEY\n"
    assert seen["ansible"] == []
