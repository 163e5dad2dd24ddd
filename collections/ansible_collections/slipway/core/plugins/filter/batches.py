"""The rollout in batches' filter (docs/rollout.md, "All at once or in batches"; the rules are slipway_core.batches'):

- `service | slipway.core.batch_summary(hostvars, order)`: after a batch failed, which app host runs which release
  of the service, from each reached host's result (the fact `__app_release_reports` the app_release role keeps per
  service in batches); a host of a later batch is named as not reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.slipway.core.plugins.plugin_utils.core import load_batches

DOCUMENTATION = """
name: batch_summary
short_description: Which app host runs which release after a rollout in batches stopped
description:
  - Takes a service's name; returns one line naming, for each app host in rollout order, the release it runs (deployed
    or unchanged), the phase it failed in with its previous release still serving, or that a later batch never
    reached it.
options:
  _input:
    description: The service's name.
    type: str
    required: true
  hostvars:
    description: Ansible's C(hostvars) (each reached app host's fact C(__app_release_reports)).
    type: dict
    required: true
  order:
    description: The app hosts in rollout order (C(rollout_hosts)' C(one_host)).
    type: list
    elements: str
    required: true
"""

REPORTS_FACT = "__app_release_reports"


def _reports(hostvars: Any, host: str) -> Mapping[str, Any]:
    try:
        found = hostvars[host].get(REPORTS_FACT)
    except (KeyError, TypeError, AttributeError):
        return {}
    return found if isinstance(found, Mapping) else {}


def batch_summary(service: Any, hostvars: Any, order: Any) -> str:
    if not isinstance(order, (list, tuple)):
        raise AnsibleFilterError(f"batch_summary: give the app hosts in rollout order, not {type(order).__name__}")
    name = str(service)
    hosts = [str(host) for host in order]
    reports = {}
    for host in hosts:
        report = _reports(hostvars, host).get(name)
        if isinstance(report, Mapping):
            reports[host] = report
    summary: str = load_batches().summary(hosts, reports, name)
    return summary


class FilterModule:
    """Filters of the rollout in batches."""

    def filters(self) -> dict[str, Any]:
        return {"batch_summary": batch_summary}
