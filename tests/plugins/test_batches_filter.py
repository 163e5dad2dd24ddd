"""slipway.core.batch_summary: which app host runs which release after a rollout in batches stopped, from each
reached host's fact __app_release_reports (hostvars), a host of a later batch named as not reached."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from plugin_loader import load_filter  # isort: skip

module = load_filter("batches")


def test_the_summary_reads_each_reached_hosts_report() -> None:
    hostvars = {
        "app-1": {"__app_release_reports": {"api": {"result": "deployed", "version": "v2"},
                                            "web": {"result": "noop", "version": "v7"}}},
        "app-2": {"__app_release_reports": {"api": {"result": "failed", "version": "v2", "previous_version": "v1",
                                                    "failed_phase": "switch"}}},
        "app-3": {},
    }
    assert module.batch_summary("api", hostvars, ["app-1", "app-2", "app-3"]) == (
        "api after the batches: app-1: v2 (deployed); app-2: failed in phase switch, v1 still serving; app-3: not "
        "reached (a later batch), left as it was")
    assert module.batch_summary("web", hostvars, ["app-1", "app-2"]) == (
        "web after the batches: app-1: v7 (noop); app-2: not reached (a later batch), left as it was")


def test_a_host_without_facts_or_a_bad_order() -> None:
    assert module.batch_summary("api", {}, ["gone"]) == (
        "api after the batches: gone: not reached (a later batch), left as it was")
    with pytest.raises(AnsibleFilterError, match="batch_summary: give the app hosts in rollout order, not str"):
        module.batch_summary("api", {}, "app-1")
    assert "batch_summary" in module.FilterModule().filters()
