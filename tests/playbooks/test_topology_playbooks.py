"""Host roles through the real playbooks (ansible-playbook, no host touched): preflight refuses each topology that
cannot work before any host task; it accepts the good ones; and each play
targets the hosts of its role (`--list-hosts`), one VM running every role as before.

Each test writes a throw-away project: the repository's playbooks copied beside its own inventories/ (preflight
reads the environments there), the repository's roles and collections. Its hosts use the Docker connection behind
a Docker socket that does not exist, so even a case that passed by mistake could reach nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PREFLIGHT = yaml.safe_load((PROJECT / "playbooks/preflight.yml").read_text(encoding="utf-8"))[0]["tasks"]
TOPOLOGY_TASK = PREFLIGHT[1]["name"]
SAFE_ENVIRON = {"DOCKER_HOST": "unix:///nonexistent/slipway-topology-test/docker.sock", "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_FORCE_COLOR": "0", "LC_ALL": "C.UTF-8"}
SERVICES = """\
        slipway_services:
          api: {image: registry.example.com/team/api, version: v1.0.0, port: 8000, domain: api.example.com}
"""


def hosts_yml(body: str) -> str:
    """An environment `demo` whose hosts reach nothing, with one service, and `body` (its hosts or children)."""
    return ("all:\n  children:\n    demo:\n      vars:\n        ansible_connection: community.docker.docker\n"
            + SERVICES + textwrap.indent(textwrap.dedent(body), "      "))


def host(name: str, address: str | None) -> str:
    return f"{name}: {{slipway_private_address: {address}}}" if address else f"{name}: {{}}"


def cluster(edge: str = "edge-1", apps: tuple[str, ...] = ("app-1", "app-2"), data: tuple[str, ...] = ("data-1",),
            monitoring: str = "data-1", addresses: dict[str, str | None] | None = None) -> str:
    """The children of `demo`: one group per role; every host has a private address unless `addresses` says."""
    given = {"edge-1": "10.0.1.10", "app-1": "10.0.1.11", "app-2": "10.0.1.12", "data-1": "10.0.1.13",
             "app-3": "10.0.1.14", **(addresses or {})}

    def group(role: str, names: tuple[str, ...]) -> str:
        lines = "".join(f"\n      {host(name, given.get(name))}" for name in names)
        return f"  demo_{role}:\n    hosts:{lines or ' {}'}\n"

    edges = (edge,) if edge else ()
    return ("children:\n" + group("edge", edges) + group("app", apps) + group("data", data)
            + group("monitoring", (monitoring,) if monitoring else ()))


def project(tmp_path: Path, hosts: str) -> Path:
    root = tmp_path / "project"
    shutil.copytree(PROJECT / "playbooks", root / "playbooks")
    (root / "inventories" / "demo").mkdir(parents=True)
    (root / "inventories" / "demo" / "hosts.yml").write_text(hosts, encoding="utf-8")
    (root / "ansible.cfg").write_text(
        "[defaults]\ninventory = inventories/demo/hosts.yml\n"
        f"roles_path = {PROJECT / 'roles'}\ncollections_path = {PROJECT / 'collections'}\n"
        "host_key_checking = True\nretry_files_enabled = False\ncallback_result_format = yaml\n"
        "[inventory]\nany_unparsed_is_failed = True\n", encoding="utf-8")
    return root


def run(root: Path, playbook: str, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **SAFE_ENVIRON, "ANSIBLE_CONFIG": str(root / "ansible.cfg")}
    environ.pop("ANSIBLE_INVENTORY", None)
    return subprocess.run([str(BIN / "ansible-playbook"), f"playbooks/{playbook}", "-e", "env=demo", *args],
                          cwd=root, capture_output=True, text=True, env=environ, timeout=120, check=False)


def recap_hosts(stdout: str) -> list[str]:
    recap = stdout.split("PLAY RECAP", 1)[1]
    return re.findall(r"^(\S+)\s+:\s+ok=", recap, flags=re.MULTILINE)


def failed_message(stdout: str) -> str:
    """The failed task's msg, on one line (the YAML result folds it and doubles quotes)."""
    found = re.search(r"^fatal: \[localhost\]: FAILED! => \n(.*?)\n\n", stdout, flags=re.MULTILINE | re.DOTALL)
    assert found, stdout
    msg = yaml.safe_load(found.group(1))["msg"]
    return str(msg)


def failed_task(stdout: str) -> str:
    """The name of the task that failed (the last TASK line before `fatal:`)."""
    return str(re.findall(r"^TASK \[(.*?)\]", stdout.split("\nfatal:", 1)[0], flags=re.MULTILINE)[-1])


def plays_and_hosts(stdout: str) -> dict[str, list[str]]:
    """--list-hosts: play name -> its hosts (sorted, as Ansible lists them)."""
    plays: dict[str, list[str]] = {}
    for block in re.split(r"\n\s*play #\d+ ", stdout)[1:]:
        name = re.match(r"\(.*?\): (.*?)\tTAGS", block)
        assert name, block
        plays[name.group(1)] = sorted(re.findall(r"^ {6}(\S+)$", block, flags=re.MULTILINE))
    return plays


REFUSED = [
    ("two data hosts", cluster(data=("data-1", "app-2")),
     "environment demo has 2 data hosts (data-1, app-2): keep exactly one in group demo_data"),
    ("no edge", cluster(edge=""),
     "environment demo has no edge host: add the host that receives the traffic on ports 80 and 443 to group "
     "demo_edge in inventories/demo/hosts.yml"),
    ("an app host the edge cannot reach", cluster(addresses={"app-2": None}),
     "host app-2 (app) has no slipway_private_address, and edge-1 (edge) must reach its colours on it: set "
     "slipway_private_address to its private IPv4 address for app-2 in inventories/demo/hosts.yml"),
    ("a data host the app hosts cannot reach", cluster(addresses={"data-1": None}),
     "host data-1 (data) has no slipway_private_address, and app-1 (app) must reach PostgreSQL and Redis on it"),
    ("two hosts without roles (the old production example)",
     "hosts:\n  app-1: {}\n  app-2: {}\n",
     "environment demo has 2 hosts (app-1, app-2) and no host roles, so each would run its own PostgreSQL, Redis "
     "and edge: put them in the groups demo_edge, demo_app, demo_data, demo_monitoring under demo in "
     "inventories/demo/hosts.yml (exactly one data host; docs/topology.md), or keep one host"),
    ("one address for two hosts", cluster(addresses={"app-2": "10.0.1.11"}),
     "hosts app-1 and app-2 have the same slipway_private_address 10.0.1.11"),
    ("a public address", cluster(addresses={"app-2": "8.8.4.4"}),
     "slipway_private_address '8.8.4.4' of host app-2 is not a private IPv4 address"),
]


@pytest.mark.parametrize(("case", "hosts", "message"), REFUSED, ids=[case for case, _, _ in REFUSED])
def test_infra_refuses_a_topology_that_cannot_work_before_any_host(tmp_path: Path, case: str, hosts: str,
                                                                    message: str) -> None:
    result = run(project(tmp_path, hosts_yml(hosts)), "infra.yml")
    assert result.returncode != 0, case
    assert message in failed_message(result.stdout)
    assert failed_task(result.stdout) == TOPOLOGY_TASK
    assert recap_hosts(result.stdout) == ["localhost"]  # no play reached a host


def test_a_role_group_outside_the_environment_is_refused(tmp_path: Path) -> None:
    """Role groups written beside the environment's group instead of under it: their hosts are not the env's."""
    beside = "".join(f"    demo_{role}:\n      hosts:\n        vm-1:\n" for role in ("edge", "data", "monitoring"))
    hosts = (hosts_yml("hosts:\n  vm-1: {slipway_private_address: 10.0.1.8}\n") + beside
             + "    demo_app:\n      hosts:\n        vm-1:\n        stray-1: {slipway_private_address: 10.0.1.9}\n")
    result = run(project(tmp_path, hosts), "infra.yml")
    assert result.returncode != 0
    assert failed_task(result.stdout) == TOPOLOGY_TASK
    assert failed_message(result.stdout) == ("host stray-1 is in group demo_app but not in environment demo: put "
                                             "demo_app under demo's children in inventories/demo/hosts.yml")
    assert recap_hosts(result.stdout) == ["localhost"]


def test_a_rollback_across_hosts_is_the_cluster_rollout_with_nothing_to_prepare(tmp_path: Path) -> None:
    """Preflight accepts it; the one-host play has no host, the cluster's begin and settle the app hosts; the plays
    between pick theirs from the hosts' answers at run time (slipway.core.cluster_play_hosts): none when listed."""
    root = project(tmp_path, hosts_yml(cluster()))
    assert run(root, "preflight.yml", "-e", "slipway_preflight_request=rollback", "-e", "service=api").returncode == 0
    listed = plays_and_hosts(run(root, "rollback.yml", "-e", "service=api", "--list-hosts").stdout)
    assert listed["Roll back"] == []
    # settle: the app hosts and the monitoring host (data-1), which writes Prometheus' targets beside their drain
    assert [listed[name] for name in CLUSTER_PLAYS] == [["app-1", "app-2"], [], [], [], ["app-1", "app-2", "data-1"]]
    assert [listed[name] for name in CLUSTER_OFF_PATH_PLAYS] == [[], [], [], [], []]


CLUSTER_PLAYS = ["Cluster | Lock and compare on every app host",
                 "Cluster | Image, backup and migration once, on the first app host",
                 "Cluster | Start and gate the new colour on every app host", "Cluster | Switch every edge, or none",
                 "Cluster | Drain and record on every app host"]
# Off the common path, their hosts from the hosts' answers at run time too: none when listed.
CLUSTER_OFF_PATH_PLAYS = ["Cluster | Begin again where the release is live already but new elsewhere",
                          "Cluster | Switch back the edges that switched while another failed",
                          "Cluster | Remove the new colour everywhere: the rollout stopped",
                          "Cluster | Record the rollout again: an app host did not pass its settle",
                          "Cluster | Fail: the rollout stopped (the previous release serves everywhere)"]


@pytest.mark.parametrize("playbook", ["deploy.yml", "site.yml"])
def test_a_deploy_across_hosts_is_the_cluster_rollout(tmp_path: Path, playbook: str) -> None:
    """Preflight accepts it; the one-host play has no host, begin and settle every app host; the plays between
    (prepare, start, switch) take their hosts from the app hosts' answers at run time, so none when listed."""
    root = project(tmp_path, hosts_yml(cluster()))
    assert run(root, "preflight.yml", "-e", "slipway_preflight_request=deploy").returncode == 0
    listed = plays_and_hosts(run(root, playbook, "--list-hosts").stdout)
    assert listed["Roll out"] == []
    # settle: the app hosts and the monitoring host (data-1), which writes Prometheus' targets beside their drain
    assert [listed[name] for name in CLUSTER_PLAYS] == [["app-1", "app-2"], [], [], [], ["app-1", "app-2", "data-1"]]
    assert [listed[name] for name in CLUSTER_OFF_PATH_PLAYS] == [[], [], [], [], []]


@pytest.mark.parametrize("request_", ["env", "status"])
def test_preflight_accepts_a_three_role_cluster_for_provisioning_and_reads(tmp_path: Path, request_: str) -> None:
    root = project(tmp_path, hosts_yml(cluster()))
    result = run(root, "preflight.yml", "-e", f"slipway_preflight_request={request_}")
    assert result.returncode == 0, result.stdout
    assert recap_hosts(result.stdout) == ["localhost"]


def test_infra_plays_target_the_hosts_of_their_role(tmp_path: Path) -> None:
    root = project(tmp_path, hosts_yml(cluster(apps=("app-1", "app-2", "app-3"))))
    result = run(root, "infra.yml", "--list-hosts")
    assert result.returncode == 0, result.stderr
    assert plays_and_hosts(result.stdout) == {
        "Check the request before any host is touched": ["localhost"],
        "Provision the Docker hosts": ["app-1", "app-2", "app-3", "data-1", "edge-1"],
        "Read the app hosts' address slots for the edges": ["app-1", "app-2", "app-3"],
        "Provision the data host": ["data-1"],
        "Provision the edge proxy on the edge hosts": ["edge-1"],
        "Run the exporters the monitoring host scrapes on the other hosts": ["app-1", "app-2", "app-3", "edge-1"],
        "Provision Prometheus on the monitoring host": ["data-1"],
    }
    for playbook in ("status.yml", "history.yml", "unlock.yml"):
        listed = plays_and_hosts(run(root, playbook, "--list-hosts").stdout)
        assert list(listed.values())[1:] == [["app-1", "app-2", "app-3"]], playbook
    listed = plays_and_hosts(run(root, "rollback.yml", "--list-hosts").stdout)
    assert listed["Roll back"] == []  # the cluster rollout's plays (test above)
    # exec: a check on the controller, then one app host (the first, or -e slipway_exec_host)
    listed = plays_and_hosts(run(root, "exec.yml", "--list-hosts").stdout)
    assert list(listed.values())[1:] == [["localhost"], ["app-1"]]
    listed = plays_and_hosts(run(root, "exec.yml", "--list-hosts", "-e", "slipway_exec_host=app-3").stdout)
    assert list(listed.values())[1:] == [["localhost"], ["app-3"]]


@pytest.mark.parametrize("host", ["edge-1", "data-1", "elsewhere"])
def test_exec_on_a_host_that_is_not_an_app_host_is_refused_on_the_controller(tmp_path: Path, host: str) -> None:
    """No play of exec.yml can hold the edge or data host: the exec play lists none, and a run is refused by the
    controller's check, naming the app hosts."""
    root = project(tmp_path, hosts_yml(cluster()))
    listed = plays_and_hosts(run(root, "exec.yml", "--list-hosts", "-e", f"slipway_exec_host={host}").stdout)
    assert listed["Exec"] == []
    result = run(root, "exec.yml", "-e", "service=api", "-e", f"slipway_exec_host={host}",
                 "-e", '{"slipway_exec_command": ["true"]}')
    assert result.returncode != 0
    assert "an app host of demo: app-1, app-2>" in failed_message(result.stdout)
    assert recap_hosts(result.stdout) == ["localhost"]


def test_one_vm_holds_every_role_and_runs_the_roles_in_the_same_order(tmp_path: Path) -> None:
    root = project(tmp_path, hosts_yml("hosts:\n  vm-1: {}\n"))
    listed = plays_and_hosts(run(root, "infra.yml", "--list-hosts").stdout)
    # No app host's slots to read, no other host's exporters to run.
    assert list(listed.values())[1:] == [["vm-1"], [], ["vm-1"], ["vm-1"], [], ["vm-1"]]
    for playbook in ("status.yml", "history.yml", "unlock.yml"):
        assert list(plays_and_hosts(run(root, playbook, "--list-hosts").stdout).values())[1:] == [["vm-1"]]
    deploy = plays_and_hosts(run(root, "deploy.yml", "--list-hosts").stdout)
    assert deploy["Roll out"] == ["vm-1"]
    assert [deploy[name] for name in CLUSTER_PLAYS] == [[]] * 5  # the cluster rollout's plays have no host
    rollback = plays_and_hosts(run(root, "rollback.yml", "--list-hosts").stdout)
    assert rollback["Roll back"] == ["vm-1"]
    assert [rollback[name] for name in CLUSTER_PLAYS] == [[]] * 5
    assert list(plays_and_hosts(run(root, "exec.yml", "--list-hosts").stdout).values())[1:] == [["localhost"],
                                                                                                 ["vm-1"]]
    tasks = run(root, "infra.yml", "--list-tasks").stdout
    roles = [name for name in re.findall(r"^ {6}(\w+) : ", tasks, flags=re.MULTILINE)]
    assert list(dict.fromkeys(roles)) == ["docker_engine", "infra_network", "postgresql", "redis", "edge_proxy",
                                          "prometheus"]
    result = run(root, "preflight.yml", "-e", "slipway_preflight_request=deploy")
    assert result.returncode == 0, result.stdout


def test_the_projects_inventories(tmp_path: Path) -> None:
    """Every environment of the repository passes preflight for a deploy (each is one VM but the cluster demo's), and
    the three-VM layout commented in the production inventory passes for provisioning and for a deploy (the cluster
    rollout)."""
    environ = {**os.environ, **SAFE_ENVIRON}
    for env in ("local", "demo_cluster", "staging", "production"):
        result = subprocess.run(
            [str(BIN / "ansible-playbook"), "playbooks/preflight.yml", "-e", f"env={env}", "-e",
             "slipway_preflight_request=deploy"], cwd=PROJECT, capture_output=True, text=True, env=environ,
            timeout=120, check=False)
        assert result.returncode == 0, result.stdout
    text = (PROJECT / "inventories/production/hosts.yml").read_text(encoding="utf-8")
    example = text.split("# Three VMs instead", 1)[1]
    block = "\n".join(line[len("#     "):] for line in example.splitlines() if line.startswith("#     "))
    body = textwrap.dedent(block).replace("production", "demo").split("\n", 1)[1]  # below `production:`
    hosts = textwrap.dedent(body)
    root = project(tmp_path, hosts_yml(hosts))
    assert run(root, "preflight.yml").returncode == 0
    assert run(root, "preflight.yml", "-e", "slipway_preflight_request=deploy").returncode == 0
    assert plays_and_hosts(run(root, "infra.yml", "--list-hosts").stdout)["Provision the data host"] == ["demo-data-1"]


def test_preflight_gives_each_host_of_the_environment_its_place_in_it(tmp_path: Path) -> None:
    """The fact slipway_env_plan on every host of the environment after preflight (nothing connects: the hosts here
    reach nothing), each host's own publish address, the same rollout hosts and data tier on all: what the
    app_release role reads instead of walking every host's variables at each use."""
    root = project(tmp_path, hosts_yml(cluster()))
    (root / "playbooks" / "show_plan.yml").write_text(textwrap.dedent("""\
        - ansible.builtin.import_playbook: preflight.yml
        - hosts: demo
          gather_facts: false
          tasks:
            - ansible.builtin.debug:
                msg: "PLAN {{ inventory_hostname }} {{ slipway_env_plan | to_json }}"
              delegate_to: localhost
        """), encoding="utf-8")
    result = run(root, "show_plan.yml", "-e", "slipway_preflight_request=deploy")
    assert result.returncode == 0, result.stdout
    found = {m.group(1): yaml.safe_load(m.group(2))
             for m in re.finditer(r"PLAN (\S+) (\{.*\})", result.stdout.replace("\n    ", " "))}
    assert sorted(found) == ["app-1", "app-2", "data-1", "edge-1"]
    assert {host: plan["publish_address"] for host, plan in found.items()} == {
        "app-1": "10.0.1.11", "app-2": "10.0.1.12", "data-1": "", "edge-1": ""}
    for plan in found.values():
        assert plan["rollout"]["apps"] == ["app-1", "app-2"] and plan["rollout"]["edges"] == ["edge-1"]
        assert plan["data_tier"] == {"data_host": "data-1", "address": "10.0.1.13", "clients": [
            {"host": "app-1", "address": "10.0.1.11"}, {"host": "app-2", "address": "10.0.1.12"}]}
