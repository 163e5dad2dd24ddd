"""slipway.core.mitogen_linear, the strategy ansible.cfg names (Mitogen for Ansible under the linear strategy).

Which connection plugin each connection name gets; and, with the real ansible-playbook against a container this test
starts (slipway/test-probe, built by tests/harness/prepare.sh) over the Docker connection, that a run under the
project's ansible.cfg starts one Python in the container for all its tasks where Ansible's own linear strategy
starts one per task. The second run is the control: without it the first could pass with Mitogen off."""

from __future__ import annotations

import builtins
import copy
import importlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import ansible
import ansible_mitogen.loaders
import ansible_mitogen.module_finder
import ansible_mitogen.planner
import ansible_mitogen.strategy
import ansible_mitogen.transport_config
import pytest
import yaml
from plugin_loader import PROJECT, loaded, play

from slipway_core import build

# plugin_loader puts the project's collections on sys.path
mitogen_linear = importlib.import_module("ansible_collections.slipway.core.plugins.strategy.mitogen_linear")


@pytest.mark.parametrize(("name", "play_connection", "loaded"), [
    ("community.docker.docker", "community.docker.docker", "mitogen_docker"),
    ("docker", "docker", "mitogen_docker"),
    ("docker", None, "mitogen_docker"),
    # Ansible's own plugin for everything else: SSH (outside a play that sets slipway_mitogen_ssh, below), local
    # (Mitogen's hung the Molecule driver's async tasks), the Docker API connection, a third party's
    ("ssh", "ssh", "ssh"),
    ("ansible.builtin.ssh", "ansible.builtin.ssh", "ansible.builtin.ssh"),
    ("local", "local", "local"),
    ("ansible.builtin.local", "ansible.builtin.local", "ansible.builtin.local"),
    ("community.docker.docker_api", "community.docker.docker_api", "community.docker.docker_api"),
    ("community.general.lxd", "community.general.lxd", "community.general.lxd"),
    # a play on a connection Mitogen does not take keeps every plugin it loads as Ansible's
    ("community.docker.docker", "ssh", "community.docker.docker"),
    ("community.docker.docker", "local", "community.docker.docker"),
])
def test_mitogen_takes_the_docker_connection_by_any_of_its_names(
        name: str, play_connection: str | None, loaded: str) -> None:
    assert mitogen_linear.connection_for(name, play_connection) == loaded


@pytest.mark.parametrize(("name", "play_connection", "loaded"), [
    ("ssh", "ssh", "mitogen_ssh"),
    ("ansible.builtin.ssh", "ansible.builtin.ssh", "mitogen_ssh"),
    ("ssh", None, "mitogen_ssh"),
    ("community.docker.docker", "community.docker.docker", "mitogen_docker"),
    ("local", "local", "local"),
    ("ssh", "local", "ssh"),
])
def test_a_play_that_sets_slipway_mitogen_ssh_has_mitogen_take_ssh_too(
        name: str, play_connection: str | None, loaded: str) -> None:
    taken = mitogen_linear.taken_in({"slipway_mitogen_ssh": True, "other": 1})
    assert mitogen_linear.connection_for(name, play_connection, taken) == loaded


@pytest.mark.parametrize("play_vars", [{}, {"slipway_mitogen_ssh": False}, {"slipway_mitogen_ssh": "yes please"}])
def test_any_other_play_keeps_ansibles_ssh(play_vars: dict[str, Any]) -> None:
    taken = mitogen_linear.taken_in(play_vars)
    assert mitogen_linear.connection_for("ssh", "ssh", taken) == "ssh"
    assert mitogen_linear.connection_for("ansible.builtin.ssh", "ssh", taken) == "ansible.builtin.ssh"
    assert mitogen_linear.connection_for("docker", "docker", taken) == "mitogen_docker"


def test_the_strategy_installs_the_hook_of_each_play(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each play's run sets the hook Mitogen installs (its module-level name) from that play's vars."""
    asked: list[str] = []
    monkeypatch.setattr(ansible_mitogen.loaders, "connection_loader__get_with_context",
                        lambda name, *args, **kwargs: asked.append(name))
    seen: list[str] = []

    def linear_run(self: Any, iterator: Any, play_context: Any, result: int = 0) -> int:
        ansible_mitogen.strategy.wrap_connection_loader__get_with_context("ssh")
        seen.append(asked[-1])
        return 0

    monkeypatch.setattr(ansible_mitogen.strategy.StrategyMixin, "run", linear_run)
    strategy = object.__new__(mitogen_linear.StrategyModule)
    for play_vars in ({"slipway_mitogen_ssh": True}, {}, None):
        iterator = SimpleNamespace(_play=SimpleNamespace(vars=play_vars))
        assert strategy.run(iterator, None) == 0
    assert seen == ["mitogen_ssh", "ssh", "ssh"]


def python_of(task_vars: dict[str, Any], delegate_to: str | None) -> list[str]:
    """The interpreter Mitogen's PlayContextSpec gives a task with these vars (interpreter_python = auto_silent, as
    ansible.cfg has it), delegated to `delegate_to` or not."""
    spec = object.__new__(ansible_mitogen.transport_config.PlayContextSpec)
    spec._task_vars = task_vars
    spec._connection = SimpleNamespace(delegate_to_hostname=delegate_to, templar=None)
    spec._action = SimpleNamespace(_mitogen_discovering_interpreter=False)
    path: list[str] = spec.python_path()
    return path


DATA_HOST_VARS: dict[str, Any] = {
    "ansible_python_interpreter": "auto_silent",
    "ansible_facts": {"discovered_interpreter_python": "/usr/bin/python3.11"},
    "ansible_delegated_vars": {
        "app-2": {"ansible_python_interpreter": "auto_silent",
                  "ansible_facts": {"discovered_interpreter_python": "/usr/bin/python3.13"}},
    },
}


def test_a_delegated_task_runs_the_python_of_the_host_it_is_delegated_to() -> None:
    """Mitogen took the discovered interpreter from the delegating host's facts: the Debian 12 data host's python3.11
    on a Debian 13 app host, unreachable (the cluster scenario under Mitogen's SSH, 2026-12-04)."""
    assert python_of(copy.deepcopy(DATA_HOST_VARS), "app-2") == ["/usr/bin/python3.13"]


def test_a_task_on_its_own_host_runs_that_hosts_python() -> None:
    task_vars = copy.deepcopy(DATA_HOST_VARS)
    assert python_of(task_vars, None) == ["/usr/bin/python3.11"]
    assert task_vars == DATA_HOST_VARS


class Invocation:
    """What Mitogen's planner reads and fills for a module call (ansible_mitogen.planner.Invocation), reduced."""

    def __init__(self) -> None:
        self._extra_sys_paths: set[str] = set()


def test_the_collections_are_listed_once_not_for_every_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mitogen's planner listed every installed collection (the metadata of the `ansible` package's 100-odd) again
    for each task, in the worker forked for it."""
    listed: list[int] = []
    dirs = ("/srv/collections/ansible_collections/acme/one", "/srv/collections/ansible_collections/acme/two")

    def listing(paths: Any) -> tuple[str, ...]:  # the scan itself is tested below; here only counted
        listed.append(1)
        return dirs

    monkeypatch.setattr(mitogen_linear, "scan_collection_dirs", listing)
    monkeypatch.setattr(mitogen_linear, "configured_collection_paths", lambda: ["/srv/collections"])
    mitogen_linear.collection_dirs.cache_clear()
    invocations = [Invocation() for _ in range(5)]
    for invocation in invocations:
        ansible_mitogen.planner._load_collections(invocation)  # the name Mitogen's `invoke` calls
    mitogen_linear.collection_dirs.cache_clear()
    assert len(listed) == 1
    assert all(invocation._extra_sys_paths == set(dirs) for invocation in invocations)


def test_each_module_util_is_compiled_once_for_all_the_modules_that_import_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mitogen scans each module it sends for the module_utils it imports by compiling them: ansible.module_utils.basic
    and its 40-odd files were compiled again for each module of a run (1,084 compiles in one idle `infra.yml`)."""
    compiled: list[str] = []
    real = builtins.compile

    def counting(source: bytes, filename: str, mode: str) -> Any:
        compiled.append(filename)
        return real(source, filename, mode)

    monkeypatch.setattr(builtins, "compile", counting)
    mitogen_linear.compiled.cache_clear()
    root = Path(ansible.__file__).parent
    found = {
        name: ansible_mitogen.module_finder.scan(f"ansible.modules.{name}", str(root / "modules" / f"{name}.py"),
                                                 (str(root / "module_utils"),))
        for name in ("ping", "stat", "command")
    }
    mitogen_linear.compiled.cache_clear()
    every = [{util for util, _, _ in utils} for utils in found.values()]
    assert all("ansible.module_utils.basic" in utils for utils in every), every
    # Each file once, however many of the modules import it; the modules' own files once each.
    assert compiled.count("ansible.module_utils.basic") == 1, compiled
    assert len(compiled) == len(set(compiled)), sorted(compiled)
    assert len(compiled) == len(set.union(*every)) + len(found)


COMPARE = """
import json, sys
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader([sys.argv[1]])
import ansible.collections.list
from ansible.utils.collection_loader import AnsibleCollectionConfig
from ansible_collections.slipway.core.plugins.strategy import mitogen_linear
print(json.dumps({"scanned": mitogen_linear.scan_collection_dirs(AnsibleCollectionConfig.collection_paths),
                  "ansible": [p.decode() for p in ansible.collections.list.list_collection_dirs()]}))
"""


def test_the_scan_finds_the_directories_ansibles_own_listing_gives() -> None:
    """scan_collection_dirs against ansible.collections.list.list_collection_dirs, over this project's collection
    path and the `ansible` package's collections, in a Python of its own (as ansible-playbook sets up its collection
    finder once per process)."""
    out = subprocess.run([sys.executable, "-c", COMPARE, str(PROJECT / "collections")], capture_output=True,
                         text=True, check=True, timeout=120)
    found = json.loads(out.stdout)
    assert len(found["scanned"]) >= 50, found  # the `ansible` package's collections, and this project's
    assert str(PROJECT / "collections" / "ansible_collections" / "slipway" / "core") in found["scanned"]
    assert sorted(found["scanned"]) == sorted(found["ansible"])


def test_the_scan_takes_the_first_paths_copy_of_a_collection(tmp_path: Path) -> None:
    for root, extra in (("first", "a"), ("second", "b")):
        (tmp_path / root / "ansible_collections" / "acme" / "web").mkdir(parents=True)
        (tmp_path / root / "ansible_collections" / "acme" / extra).mkdir(parents=True)
    (tmp_path / "second" / "ansible_collections" / "not-a-name" / "x").mkdir(parents=True)
    (tmp_path / "second" / "ansible_collections" / "acme" / "README.md").write_text("not a collection")
    found = mitogen_linear.scan_collection_dirs([str(tmp_path / "first"), str(tmp_path / "missing"),
                                                 str(tmp_path / "second")])
    base = "{}/{}/ansible_collections/acme/{}"
    assert found == (base.format(tmp_path, "first", "a"), base.format(tmp_path, "first", "web"),
                     base.format(tmp_path, "second", "b"))


@pytest.fixture(scope="module")
def container() -> Iterator[str]:
    name = f"slipway-mitogen-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "run", "-d", "--rm", "--name", name, "--user", "root", "--entrypoint", "sleep",
                    "slipway/test-probe:bookworm", "infinity"], check=True, capture_output=True, timeout=60)
    try:
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name], check=False, capture_output=True, timeout=60)


# Each task prints the PID of the Python that ran its module (the parent of the command it runs).
PARENTS = """\
- ansible.builtin.command: cut -d' ' -f4 /proc/self/stat
  register: first
  changed_when: false
- ansible.builtin.command: cut -d' ' -f4 /proc/self/stat
  register: second
  changed_when: false
- ansible.builtin.debug:
    msg: "PARENTS {{ first.stdout }} {{ second.stdout }}"
"""


def parents(tmp_path: Path, container: str, env: dict[str, str]) -> list[str]:
    """The PIDs of the Python processes that ran two command tasks, one after the other, in the container."""
    result = play(tmp_path, PARENTS, inventory=f"{container},", env=env, hosts=container,
                  connection="community.docker.docker", python="/usr/bin/python3")
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if "PARENTS" in x)
    return line.split("PARENTS", 1)[1].strip().strip('"').split()


def test_the_projects_strategy_runs_every_task_on_a_host_from_one_python(tmp_path: Path, container: str) -> None:
    assert "\nstrategy = slipway.core.mitogen_linear\n" in (PROJECT / "ansible.cfg").read_text(encoding="utf-8")
    first, second = parents(tmp_path, container, {})
    assert first == second


def test_ansibles_own_linear_strategy_starts_one_python_per_task(tmp_path: Path, container: str) -> None:
    first, second = parents(tmp_path, container, {"ANSIBLE_STRATEGY": "ansible.builtin.linear"})
    assert first != second


def host_command(tmp_path: Path, container: str, program: str, argv: str) -> dict[str, Any]:
    """slipway.core.host_command's result for `program` with `argv` in the container, under the project's strategy."""
    out = tmp_path / "out.json"
    result = play(tmp_path, f"""
        - slipway.core.host_command:
            program: {program}
            artifact: /opt/{tmp_path.name}/lib/slipway-host.pyz
            argv: {argv}
          register: out
          failed_when: false
        - ansible.builtin.copy:
            content: "{{{{ out | to_json }}}}"
            dest: {out}
            mode: "0600"
          delegate_to: localhost
    """, inventory=f"{container},", hosts=container, connection="community.docker.docker",
                  python="/usr/bin/python3")
    assert result.returncode == 0, result.stdout + result.stderr
    shown: dict[str, Any] = loaded(out)
    return shown


def test_under_mitogen_a_missing_host_program_is_installed_and_answers(tmp_path: Path, container: str) -> None:
    """Mitogen's terminal for a become command without input put the shell's "not found" on stdout, so the action
    took it for an answer and never installed the program (the first CI under Mitogen, 2026-12-03)."""
    shown = host_command(tmp_path, container, f"/opt/{tmp_path.name}/sbin/slipway-proxy", "[build]")
    assert shown["installed"] is True, shown
    assert shown["rc"] == 0 and build.build_id() in shown["stdout"], shown


def test_under_mitogen_stdout_and_stderr_stay_apart(tmp_path: Path, container: str) -> None:
    program = f"/opt/{tmp_path.name}/slipway-release"
    subprocess.run(["docker", "exec", container, "sh", "-c", f"mkdir -p /opt/{tmp_path.name} && "
                    f"printf '#!/bin/sh\\necho answer\\necho complaint >&2\\n' > {program} && chmod 0755 {program}"],
                   check=True, capture_output=True, timeout=60)
    shown = host_command(tmp_path, container, program, "[status]")
    assert (shown["rc"], shown["stdout"], shown["stderr"], shown["installed"]) == (0, "answer", "complaint", False)


def test_under_mitogen_a_templated_ansible_host_names_the_container(tmp_path: Path, container: str) -> None:
    """inventories/local/hosts.yml names its container with a template (SLIPWAY_LOCAL_HOST); Mitogen read it as
    written and looked for a container called "{{ lookup(...) }}" (the second CI under Mitogen, 2026-12-04)."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    templated:\n      ansible_connection: community.docker.docker\n"
        "      ansible_host: \"{{ lookup('ansible.builtin.env', 'SLIPWAY_TEST_CONTAINER', default='none') }}\"\n",
        encoding="utf-8")
    result = play(tmp_path, "- ansible.builtin.command: cat /etc/hostname\n  changed_when: false\n",
                  inventory=str(inventory), hosts="templated", connection="community.docker.docker",
                  python="/usr/bin/python3", env={"SLIPWAY_TEST_CONTAINER": container})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "unreachable=0" in result.stdout and "failed=0" in result.stdout


def test_every_provisioning_play_has_mitogen_take_ssh() -> None:
    """playbooks/infra.yml's plays (a hundred-odd tasks per host) run over Mitogen's SSH; the deploys keep Ansible's."""
    plays = yaml.safe_load((PROJECT / "playbooks/infra.yml").read_text(encoding="utf-8"))
    host_plays = [entry for entry in plays if "hosts" in entry]
    assert len(host_plays) >= 5
    assert all(mitogen_linear.taken_in(entry.get("vars") or {})["ssh"] == "ssh" for entry in host_plays)
    rollouts = [PROJECT / "playbooks/deploy.yml", PROJECT / "playbooks/rollback.yml",
                *(PROJECT / "playbooks/cluster").glob("*.yml")]
    for playbook in rollouts:
        for entry in yaml.safe_load(playbook.read_text(encoding="utf-8")):
            assert "ssh" not in mitogen_linear.taken_in(entry.get("vars") or {}), (playbook, entry.get("name"))
