"""Every `docker_container_exec` in the roles is asked again while Docker's exec API gives no exit status.

Docker's exec API fails now and then on a busy host (CI, 2026-12-05: "Action failed: Unknown error" from the redis
role's login check right after its handlers), and the module's result then has no `rc`: a command that ran and failed
has one. Each such task must retry (retries >= 2) with an `until` that its own result decides, so that Docker's
failure is asked again and the command's own failure still fails the run (or is handled by the task's failed_when)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXEC = "community.docker.docker_container_exec"


def tasks(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tasks of a task list, blocks (block, rescue, always) opened."""
    found: list[dict[str, Any]] = []
    for item in items or []:
        nested = [part for key in ("block", "rescue", "always") for part in item.get(key) or []]
        found.extend(tasks(nested) if nested else [item])
    return found


def exec_tasks() -> list[tuple[str, Path, dict[str, Any]]]:
    """Each exec task: where it is (file and name), its role's directory, the task."""
    return [(f"{path.relative_to(ROOT)}: {task.get('name')}", path.parents[1], task)
            for path in sorted(ROOT.glob("roles/*/*/*.yml")) if path.parent.name in ("tasks", "handlers")
            for task in tasks(yaml.safe_load(path.read_text(encoding="utf-8")) or []) if EXEC in task]


def retries(role: Path, value: Any) -> int:
    """A task's retries: a number, or `{{ <role default> | int }}` read from its role's defaults (the redis role's
    login check asks again for as long as the server loads its data set, redis_load_timeout)."""
    match = re.fullmatch(r"\{\{\s*(\w+)\s*\|\s*int\s*\}\}", str(value).strip())
    if match is None:
        return int(value)
    return int(yaml.safe_load((role / "defaults" / "main.yml").read_text(encoding="utf-8"))[match.group(1)])


def test_a_templated_retries_is_read_from_the_role_s_defaults() -> None:
    assert retries(ROOT / "roles" / "redis", "{{ redis_load_timeout | int }}") >= 2
    assert retries(ROOT / "roles" / "redis", 3) == 3


def test_the_roles_have_docker_exec_tasks_to_check() -> None:
    assert len(exec_tasks()) >= 5


def test_each_docker_exec_task_asks_again_on_its_own_result() -> None:
    missing = []
    for where, role, task in exec_tasks():
        register, until = task.get("register"), str(task.get("until", ""))
        if not (register and retries(role, task.get("retries", 0)) >= 2 and until.startswith(f"{register}.")
                and ("rc is defined" in until or "stdout" in until)):
            missing.append(where)
    assert not missing, f"docker_container_exec tasks that do not retry Docker's exec failure: {missing}"
