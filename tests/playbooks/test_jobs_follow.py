"""The scheduled jobs' sync through ansible-playbook, on both paths: tasks/jobs_follow.yml as tasks/main.yml imports it
(one VM), and after a cluster rollout tasks/cluster_settle.yml whole (its jobs' entries, then the settle's call, a
`batch` whose only call here is the sync: no service went on, so nothing drains, and the rollout's record goes to the
first app host, which this host is not); the one VM's with its own `vars:` read from the file, against
this machine (local connection): the real host program (the zipapp, installed in tmp_path beforehand) writes the
units into tmp_path; only systemctl is a stand-in (a script first in PATH that logs each call and keeps the timers'
enabled/active state in a file). No Docker, no systemd.

Shown: one host call per play; a service whose rollout failed keeps its units; another service's are installed,
with jobs.json (no secret) ; a service gone from the registry loses its units; a second run is changed=0 with ONE
systemctl call (`show`); check mode reports the change and changes nothing; a host that is not the job host loses
the units. And both deploy paths list the one task (`--list-tasks`), none of the old per-service tasks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway_core import build

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TASKS = PROJECT / "roles" / "app_release" / "tasks"
SYNC_TASK = "Jobs | Install, update or remove the scheduled jobs' units on the host (one call)"
CLUSTER_SYNC_TASK = ("Drain | Cluster: Stop the old colour, record the release and the rollout; the monitoring host "
                     "points Prometheus at it")
# What preflight sets on the host (slipway_core.topology.env_plan) of a one-host environment; here the cluster path
# names no app host, so the rollout's record goes elsewhere and the settle's last call is the sync alone.
ONE_VM_PLAN = {"rollout": {"one_host": ["vm-1"], "apps": [], "first_app": [], "edges": [], "settle": [], "serial": []},
               "data_tier": {"data_host": "vm-1", "address": "", "clients": []}, "publish_address": ""}
IMPORTS = {"main.yml": ("Scheduled jobs follow the release", "jobs_follow.yml")}
FAKE_SYSTEMCTL = """#!{python}
import json, os, sys
base = os.environ["SLIPWAY_FAKE_SYSTEMD"]
with open(os.path.join(base, "calls.jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
path = os.path.join(base, "state.json")
state = json.load(open(path)) if os.path.exists(path) else {{"enabled": [], "active": []}}
verb, units = sys.argv[1], [a for a in sys.argv[2:] if not a.startswith("-")]
if verb == "show":
    print("\\n".join(f"Id={{u}}\\nActiveState={{'active' if u in state['active'] else 'inactive'}}\\n"
                    f"UnitFileState={{'enabled' if u in state['enabled'] else ''}}\\n" for u in units))
for unit in units:
    if verb == "enable":
        state["enabled"].append(unit)
    if verb in ("start", "restart"):
        state["active"].append(unit)
    if verb == "disable":
        state["enabled"] = [u for u in state["enabled"] if u != unit]
        state["active"] = [u for u in state["active"] if u != unit]
json.dump({{k: sorted(set(v)) for k, v in state.items()}}, open(path, "w"))
"""
REPORT = {"schedule": "*-*-* 03:00:00", "command": ["python", "-m", "app.report"], "timeout": 60}
SERVICES = {
    name: {"image": "registry.example.com/team/notes", "version": "v1.0.0", "port": 8000,
           "domain": f"{name}.example.com", "postgres": True, "jobs": {"report": REPORT}}
    for name in ("jotter", "broken")
}


def import_vars(path: Path, name: str, imported: str) -> dict[str, Any]:
    """The `vars:` of the task that imports `imported` in `path` (the very expressions the role runs)."""
    tasks = yaml.safe_load(path.read_text(encoding="utf-8"))
    [task] = [t for t in tasks if t.get("ansible.builtin.import_tasks") == imported]
    assert task["name"] == name
    return dict(task["vars"])


class Project:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.units, self.state, self.textfile, self.fake = (tmp_path / d for d in ("units", "state", "textfile",
                                                                                   "systemd"))
        for path in (self.units, self.state, self.textfile, self.fake, tmp_path / "bin", tmp_path / "sbin"):
            path.mkdir()
        data, _ = build.build()  # the controller's build, installed: the action uses it as it is
        artifact = tmp_path / "slipway-host.pyz"
        artifact.write_bytes(data)
        artifact.chmod(0o755)
        (tmp_path / "sbin" / "slipway-release").symlink_to(artifact)
        systemctl = tmp_path / "bin" / "systemctl"
        systemctl.write_text(FAKE_SYSTEMCTL.format(python=sys.executable), encoding="utf-8")
        systemctl.chmod(0o755)
        (tmp_path / "ansible.cfg").write_text(
            f"[defaults]\ninventory = hosts.yml\nroles_path = {PROJECT / 'roles'}\n"
            f"collections_path = {PROJECT / 'collections'}\nretry_files_enabled = False\n", encoding="utf-8")
        hosts = {"all": {"children": {"demo": {"hosts": {"vm-1": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "app_release_command_path": str(tmp_path / "sbin" / "slipway-release"),
            "app_release_state_dir": str(self.state), "app_release_jobs_unit_dir": str(self.units),
            "app_release_jobs_textfile_dir": str(self.textfile), "slipway_services": SERVICES}}}}}}
        (tmp_path / "hosts.yml").write_text(yaml.safe_dump(hosts), encoding="utf-8")

    def playbook(self, importer: str, play_vars: dict[str, Any]) -> Path:
        """A play that imports jobs_follow.yml as main.yml does, or cluster_settle.yml as the cluster's settle play."""
        if importer == "cluster_settle.yml":
            # Each service's verdict as the cluster's filter gives it; this host an app host (the plan names none).
            task: dict[str, Any] = {
                "name": "Settle", "ansible.builtin.import_role": {"name": "app_release", "tasks_from": importer},
                "vars": {"__app_release_verdict": "{{ verdicts[__app_release_svc.name] }}",
                         "__app_release_on_app": True, "__app_release_cluster_until": "switch"}}
        else:
            name, imported = IMPORTS[importer]
            task = {"name": name, "ansible.builtin.import_role": {"name": "app_release", "tasks_from": imported},
                    "vars": import_vars(TASKS / importer, name, imported)}
        tasks = [task]
        path = self.tmp / f"play-{importer}"
        path.write_text(yaml.safe_dump([{"name": "Jobs", "hosts": "vm-1", "gather_facts": False,
                                         "vars": {"env": "demo", "slipway_env_plan": ONE_VM_PLAN, **play_vars},
                                         "tasks": tasks}]),
                        encoding="utf-8")
        return path

    def run(self, playbook: Path, *args: str) -> subprocess.CompletedProcess[str]:
        environ = {**os.environ, "ANSIBLE_CONFIG": str(self.tmp / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                   "PATH": f"{self.tmp / 'bin'}:{os.environ['PATH']}", "SLIPWAY_FAKE_SYSTEMD": str(self.fake)}
        environ.pop("ANSIBLE_INVENTORY", None)
        result = subprocess.run([str(BIN / "ansible-playbook"), str(playbook), *args], cwd=self.tmp,
                                capture_output=True, text=True, env=environ, timeout=180, check=False)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        return result

    def calls(self) -> list[list[str]]:
        log = self.fake / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def changed(result: subprocess.CompletedProcess[str]) -> int:
    found = re.search(r"^vm-1\s+:.*\bchanged=(\d+)", result.stdout, flags=re.MULTILINE)
    assert found, result.stdout
    return int(found.group(1))


PATHS = [("main.yml", {"__app_release_failures": ["broken: rollout failed in phase health: not healthy"]}),
         ("cluster_settle.yml", {"verdicts": {"jotter": {"go": False, "noop": True},
                                              "broken": {"go": False, "noop": False}}})]


@pytest.mark.parametrize(("importer", "play_vars"), PATHS, ids=["one VM", "cluster"])
def test_the_jobs_follow_the_release_in_one_host_call(tmp_path: Path, importer: str,
                                                      play_vars: dict[str, Any]) -> None:
    project = Project(tmp_path)
    before = "[Unit]\nX-Slipway-Service=broken\n# as the previous release left it\n"
    (project.units / "slipway-job-broken-report.timer").write_text(before, encoding="utf-8")
    (project.units / "slipway-job-gone-nightly.timer").write_text("[Unit]\nX-Slipway-Service=gone\n",
                                                                  encoding="utf-8")
    (project.textfile / "slipway_jobs_gone.prom").write_text("# old\n", encoding="utf-8")
    playbook = project.playbook(importer, play_vars)

    result = project.run(playbook)

    task = SYNC_TASK if importer == "main.yml" else CLUSTER_SYNC_TASK
    assert result.stdout.count(f"TASK [app_release : {task}]") == 1 and changed(result) == 1
    assert sorted(os.listdir(project.units)) == ["slipway-job-broken-report.timer",  # its rollout failed: as it was
                                                 "slipway-job-jotter-report.service", "slipway-job-jotter-report.timer"]
    assert (project.units / "slipway-job-broken-report.timer").read_text(encoding="utf-8") == before
    assert not (project.textfile / "slipway_jobs_gone.prom").exists()
    timer = (project.units / "slipway-job-jotter-report.timer").read_text(encoding="utf-8")
    assert "OnCalendar=*-*-* 03:00:00\n" in timer
    service = (project.units / "slipway-job-jotter-report.service").read_text(encoding="utf-8")
    assert (f"-- {tmp_path}/sbin/slipway-release --root {project.state} job run jotter report --trigger timer "
            f"--textfile-dir {project.textfile}\n") in service
    jobs = json.loads((project.state / "jotter" / "jobs.json").read_text(encoding="utf-8"))
    assert jobs["jobs"] == {"report": {"name": "report", **REPORT}}
    assert sorted(jobs["release"]) == ["container", "network", "pin_hosts", "resources"]
    assert [c[0] for c in project.calls()] == ["show", "disable", "daemon-reload", "enable", "restart"]

    calls = len(project.calls())
    again = project.run(playbook)  # the no-op: nothing changes, systemd asked once
    assert changed(again) == 0 and [c[0] for c in project.calls()[calls:]] == ["show"]

    snapshot = {p: p.read_text(encoding="utf-8") for p in project.units.iterdir()}
    changed_registry = json.dumps({"slipway_services": {**SERVICES, "jotter": {
        **SERVICES["jotter"], "jobs": {"report": {**REPORT, "schedule": "hourly"}}}}})
    checked = project.run(playbook, "--check", "-e", changed_registry)
    assert changed(checked) == 1 and {p: p.read_text(encoding="utf-8") for p in project.units.iterdir()} == snapshot
    assert [c[0] for c in project.calls()[calls + 1:]] == ["show"]

    elsewhere = project.run(playbook, "-e", "app_release_jobs_host=app-9")  # not the job host: its units go
    assert changed(elsewhere) == 1
    assert os.listdir(project.units) == ["slipway-job-broken-report.timer"]


def test_across_hosts_each_following_service_s_sync_rides_in_its_own_settle_call(tmp_path: Path) -> None:
    """Both services went on (no task collects the entries first): each settle call syncs its own service, so both
    get their units, and what a service gone from the registry left is removed."""
    project = Project(tmp_path)
    (project.units / "slipway-job-gone-nightly.timer").write_text("[Unit]\nX-Slipway-Service=gone\n",
                                                                  encoding="utf-8")
    playbook = project.playbook("cluster_settle.yml", {"verdicts": {"jotter": {"go": False, "noop": True},
                                                                    "broken": {"go": False, "noop": True}}})
    result = project.run(playbook)
    assert "Jobs | The jobs of each service" not in result.stdout  # no task of its own on the rollout's clock
    assert sorted(os.listdir(project.units)) == [f"slipway-job-{name}-report.{kind}" for name in ("broken", "jotter")
                                                 for kind in ("service", "timer")]
    assert changed(project.run(playbook)) == 0


def test_the_one_vm_deploy_lists_the_jobs_tasks_once(tmp_path: Path) -> None:
    """The one-VM play ("Roll out") holds the jobs' two tasks once, and none of the per-service tasks they replace.
    (The cluster's last play reaches cluster_settle.yml through a dynamic include, which --list-tasks does not open:
    its import is the one test_the_jobs_follow_the_release_in_one_host_call runs.)"""
    (tmp_path / "hosts.yml").write_text(
        "all:\n  children:\n    demo:\n      vars:\n        slipway_services: {api: {image: r.example.com/api, "
        "version: v1.0.0, port: 8000, domain: a.example.com}}\n      hosts:\n        vm-1: {}\n", encoding="utf-8")
    environ = {**os.environ, "ANSIBLE_NOCOLOR": "1", "DOCKER_HOST": "unix:///nonexistent/slipway.sock"}
    environ.pop("ANSIBLE_INVENTORY", None)
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"), "-e", "env=demo",
                             "playbooks/deploy.yml", "--list-tasks"], cwd=PROJECT, capture_output=True, text=True,
                            env=environ, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [roll_out] = [p for p in result.stdout.split("play #") if "): Roll out\t" in p]
    tasks = re.findall(r"^ {6}app_release : (.*?)\tTAGS", roll_out, flags=re.MULTILINE)
    assert tasks[tasks.index("Roll out each service") + 1:] == [
        "Jobs | The jobs of each service whose rollout did not fail (on the controller)", SYNC_TASK,
        "Fail when a rollout failed (each failed service kept its previous release)"]
