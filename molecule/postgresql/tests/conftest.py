"""Print the server's log when a test fails, so the failure explains itself."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


@pytest.fixture(autouse=True)
def _postgres_logs_on_failure(request: pytest.FixtureRequest, host: Any) -> Generator[None, None, None]:
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        logs = host.run("docker logs --tail 40 postgres 2>&1")
        print("---- docker logs postgres (last 40 lines) ----\n" + logs.stdout)
