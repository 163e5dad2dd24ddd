"""slipway.core.mitogen_linear, the strategy ansible.cfg names (Mitogen for Ansible under the linear strategy).

Which connection plugin each connection name gets; and, with the real ansible-playbook against a container this test
starts (slipway/test-probe, built by tests/harness/prepare.sh) over the Docker connection, that a run under the
project's ansible.cfg starts one Python in the container for all its tasks where Ansible's own linear strategy
starts one per task. The second run is the control: without it the first could pass with Mitogen off."""

from __future__ import annotations

import importlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ansible.collections.list
import ansible_mitogen.planner
import pytest
from plugin_loader import PROJECT, loaded, play

from slipway_core import build

# plugin_loader puts the project's collections on sys.path
mitogen_linear = importlib.import_module("ansible_collections.slipway.core.plugins.strategy.mitogen_linear")


@pytest.mark.parametrize(("name", "play_connection", "loaded"), [
    ("community.docker.docker", "community.docker.docker", "mitogen_docker"),
    ("docker", "docker", "mitogen_docker"),
    ("docker", None, "mitogen_docker"),
    # Ansible's own plugin for everything else: SSH (Mitogen's lost the delegated tasks of the cluster scenario),
    # local (Mitogen's hung the Molecule driver's async tasks), the Docker API connection, a third party's
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


class Invocation:
    """What Mitogen's planner reads and fills for a module call (ansible_mitogen.planner.Invocation), reduced."""

    def __init__(self) -> None:
        self._extra_sys_paths: set[str] = set()


def test_the_collections_are_listed_once_not_for_every_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mitogen's planner listed every installed collection (the metadata of the `ansible` package's 100-odd) again
    for each task, in the worker forked for it."""
    listed: list[int] = []
    dirs = [b"/srv/collections/ansible_collections/acme/one", b"/srv/collections/ansible_collections/acme/two"]

    def listing(*args: Any, **kwargs: Any) -> Any:  # the listing itself is Ansible's; here only counted
        listed.append(1)
        return iter(dirs)

    monkeypatch.setattr(ansible.collections.list, "list_collection_dirs", listing)
    mitogen_linear.collection_dirs.cache_clear()
    invocations = [Invocation() for _ in range(5)]
    for invocation in invocations:
        ansible_mitogen.planner._load_collections(invocation)  # the name Mitogen's `invoke` calls
    mitogen_linear.collection_dirs.cache_clear()
    assert len(listed) == 1
    expected = {path.decode() for path in dirs}
    assert all(invocation._extra_sys_paths == expected for invocation in invocations)


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
