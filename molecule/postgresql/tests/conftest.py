"""Which host each test runs for: @pytest.mark.modes("one-host", "managed") names the modes a test checks; an
unmarked test is about the one-host mode (the server in a container on the host) only."""

from __future__ import annotations

import pytest

HOSTS = {"one-host": "slipway-postgresql", "managed": "slipway-postgresql-managed"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "modes(*names): the modes (one-host, managed) a test runs for")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("modes")
        modes = marker.args if marker else ("one-host",)
        unknown = set(modes) - set(HOSTS)
        if unknown:
            raise pytest.UsageError(f"{item.nodeid}: unknown modes {sorted(unknown)}")
        callspec = getattr(item, "callspec", None)
        host = callspec.params.get("_testinfra_host") if callspec is not None else None
        pytest_id = host.backend.get_pytest_id() if host is not None else ""
        wanted = {"ansible://" + HOSTS[mode] for mode in modes}
        (keep if not pytest_id or pytest_id in wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
