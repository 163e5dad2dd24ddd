"""Fixtures shared by every scenario's testinfra tests (pytest loads this for tests under molecule/)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def run_playbook() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a playbook against this scenario's instances (Molecule's own inventory), as converge does.

    Returns the completed process; output is captured so a test can assert on the messages it prints.
    """
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or str(
        Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory"
    )

    def run(playbook: str | Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"),
            "ANSIBLE_ROLES_PATH": str(PROJECT / "roles"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        }
        return subprocess.run(
            ["ansible-playbook", "-i", inventory, str(playbook), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
            cwd=PROJECT,
        )

    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


@pytest.fixture(autouse=True)
def _container_logs_on_failure(request: pytest.FixtureRequest, host: Any) -> Generator[None, None, None]:
    """When a test fails, print the last log lines of the inner containers its module names in
    DIAGNOSTIC_CONTAINERS, so the failure explains itself."""
    yield
    containers = getattr(request.module, "DIAGNOSTIC_CONTAINERS", ())
    report = getattr(request.node, "rep_call", None)
    if not containers or report is None or not report.failed:
        return
    for name in containers:
        logs = host.run(f"docker logs --tail 40 {name} 2>&1")
        print(f"---- docker logs {name} (last 40 lines) ----\n" + logs.stdout)
