"""Rollout in batches (docs/rollout.md, "All at once or in batches"): for a fleet whose every app host runs its own
edge behind a cloud load balancer, the environment's `slipway_rollout_batch_size` rolls the app hosts out a batch
after another, each host through the whole one-VM rollout (start, health gate, switch its own edge, drain).

The rules here: the setting read and refused with the fix, the topology batches need (every app host its own edge,
every edge an app host), and the batch sizes a play's `serial` gets. The first batch is always the first app host
alone: it backs up and migrates once for the whole rollout (the data tier is one) before any other host starts the
new release, and it is the canary; the later batches neither back up nor migrate.

The controller's side only (preflight and the collection's filters); hosts never need it. Standard library only,
Python 3.8+, like the contract it builds on.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from .contract import InputRefused, shown

SETTING = "slipway_rollout_batch_size"
_PERCENT_RE = re.compile(r"\s*(\d+)\s*%\s*")
_WHOLE_RE = re.compile(r"\s*(\d+)\s*")


def _where(env: str) -> str:
    return f"inventories/{env}/group_vars/{env}/" if env else "the environment's group_vars"


def parse(value: Any, env: str = "") -> tuple[int, bool] | None:
    """The setting as (number, is a percentage), or None when it is not set (every app host at once). Refused: any
    other value than a whole number of app hosts (1 or more) or a percentage of them (1% to 100%)."""
    if value is None or value == "":
        return None
    fix = (f"set {SETTING} to a whole number of app hosts per batch (1 or more, such as 1) or a percentage of them "
           f"(such as 25%), or remove it to roll every app host out at once, in {_where(env)}")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InputRefused(f"{SETTING} {shown(value)} is neither a number of hosts nor a percentage: {fix}")
    text = str(value)
    percent = _PERCENT_RE.fullmatch(text)
    whole = _WHOLE_RE.fullmatch(text)
    if percent is not None and 1 <= int(percent.group(1)) <= 100:
        return int(percent.group(1)), True
    if whole is not None and int(whole.group(1)) >= 1:
        return int(whole.group(1)), False
    raise InputRefused(f"{SETTING} {shown(value)} is not a batch size: {fix}")


def setting(env: str, hosts: Sequence[str], host_vars: Mapping[str, Mapping[str, Any]]) -> tuple[int, bool] | None:
    """The environment's setting from its hosts' variables (it belongs in the environment's group_vars: a value set
    for some hosts only, or different values, is refused naming them)."""
    values = {host: (host_vars.get(host) or {}).get(SETTING) for host in hosts}
    parsed = {host: parse(value, env) for host, value in values.items()}
    found = set(parsed.values())
    if len(found) > 1:
        shown_values = "; ".join(f"{host}: {shown(values[host])}" for host in hosts)
        raise InputRefused(f"{SETTING} differs between the hosts of environment {env} ({shown_values}): set it once "
                           f"for the environment, in {_where(env)}")
    return next(iter(found)) if found else None


def check_topology(env: str, found: Mapping[str, Sequence[str]]) -> None:
    """Batches need every app host to hold its own edge and every edge to be an app host (each edge routes only to
    its own host's colours); anything else is refused naming the host and the fix."""
    where = f"inventories/{env}/hosts.yml"
    off = f"or remove {SETTING} from {_where(env)} to roll every app host out at once"
    for edge in found["edge"]:
        if edge not in found["app"]:
            raise InputRefused(
                f"{SETTING} is set, but edge host {edge} of environment {env} is not an app host: in batches each "
                f"edge routes only to its own host's colours, so {edge} would route nothing. Make every edge an app "
                f"host (put {edge} in group {env}_app too, or take it out of {env}_edge) in {where}, {off}")
    for app in found["app"]:
        if app not in found["edge"]:
            raise InputRefused(
                f"{SETTING} is set, but app host {app} of environment {env} has no edge of its own: in batches each "
                f"app host switches its own edge behind the cloud load balancer. Put {app} in group {env}_edge too "
                f"in {where}, {off}")


def sizes(hosts: int, batch: tuple[int, bool] | None) -> list[int]:
    """The size of each batch for `hosts` app hosts, in order, summing to `hosts`: the first app host alone, then
    batches of the setting (a percentage of all app hosts, rounded down, at least 1). Not set: [] (one batch of all:
    Ansible's `serial` default)."""
    if batch is None or hosts <= 0:
        return []
    number, percent = batch
    each = max(1, hosts * number // 100) if percent else number
    out = [1]
    left = hosts - 1
    while left > 0:
        out.append(min(each, left))
        left -= out[-1]
    return out


def summary(order: Sequence[str], reports: Mapping[str, Mapping[str, Any]], service: str) -> str:
    """Which app host runs which release of `service` after a rollout in batches stopped: `order` the app hosts in
    rollout order, `reports` each reached host's result item (result, version, previous_version, failed_phase)."""
    parts = []
    for host in order:
        report = reports.get(host)
        if report is None:
            parts.append(f"{host}: not reached (a later batch), left as it was")
            continue
        result, version = str(report.get("result", "")), str(report.get("version", ""))
        if result in ("deployed", "noop"):
            parts.append(f"{host}: {version} ({result})")
        elif result == "failed":
            previous = str(report.get("previous_version") or "") or "its previous release"
            parts.append(f"{host}: failed in phase {report.get('failed_phase') or 'unknown'}, {previous} still serving")
        else:
            parts.append(f"{host}: {result or 'unknown'} (needs a person: see its result)")
    return f"{service} after the batches: " + "; ".join(parts)
