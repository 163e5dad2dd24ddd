"""Fixtures shared by every scenario's testinfra tests (pytest loads this for tests under molecule/)."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import exec_retry
import pytest
import scenario_tools
from testinfra.backend.docker import DockerBackend

# Every scenario's `host` runs its checks through `docker exec`: Docker's own exec failures are run again (exec_retry).
DockerBackend.run = exec_retry.retrying(DockerBackend.run)


@pytest.fixture(scope="session")
def run_playbook() -> scenario_tools.RunPlaybook:
    """scenario_tools.run_playbook as a fixture: run a playbook against this scenario's instances."""
    return scenario_tools.run_playbook


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)
    if report.failed:
        scenario = os.environ.get("MOLECULE_SCENARIO_NAME", "molecule")
        scenario_tools.record_failure(scenario, report.nodeid, report.when, report.longreprtext)


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
