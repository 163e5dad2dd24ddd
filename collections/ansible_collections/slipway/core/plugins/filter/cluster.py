"""The cluster rollout's filters (docs/rollout.md, "Across hosts"; the rules are slipway_core.topology's,
slipway_core.cluster's and slipway_core.cluster_rollout's):

- `groups | slipway.core.rollout_hosts(env, hostvars)`: the hosts of each play of a deploy (one host, the app
  hosts in batches with the sizes of their batches when the environment sets slipway_rollout_batch_size, or the
  cluster's app hosts, first app host and edges).
- `groups | slipway.core.publish_address(env, hostvars, inventory_hostname)`: where an app host publishes its
  colours for an edge on another host ('' on one VM).
- `services | slipway.core.edge_members(local, groups, env, hostvars, inventory_hostname)`: an edge's servers of
  every service, one per (app host, replica), from its own addresses and each other app host's slot table (the fact
  `slipway_colour_slots` the app hosts' play of infra.yml sets).
- `hostvars | slipway.core.cluster_scrape_plan(apps, edges, services, action)`: what Prometheus on the monitoring
  host scrapes once every edge switched (each app host's published targets of each service that went live).
- `hostvars | slipway.core.cluster_host_record(host)`: what a host answered in each phase so far (its record),
  folded from what its tasks registered (`results | slipway.core.cluster_record(previous, phase)`, one task's);
  `hostvars | slipway.core.cluster_verdict(...)`: whether a service goes on, is a noop or failed (naming the host
  and phase); `hostvars | slipway.core.cluster_hosts(...)`: each host's result, for the rollout's one history record.
  The settle's items are `slipway-release batch` results: its `run` call (the drain) answers for the service, and
  `item | slipway.core.batch_failed(commands)` names the other calls that failed (the record, the jobs' sync).
- `hostvars | slipway.core.cluster_play_hosts(rollout, phase, action[, through])`: the hosts the play of a phase
  (prepare, start, switch; off the common path rebegin, switch-back, stopped, record-again) has work for, [] to skip it
  (`rollout`: rollout_hosts' answer); `hostvars | slipway.core.cluster_switch_back(apps, edges, service, action)`:
  the edges that switch a service back (one edge failed its switch).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.slipway.core.plugins.plugin_utils.core import (
    load_cluster,
    load_cluster_rollout,
    load_contract,
    load_topology,
)

SLOTS_FACT = "slipway_colour_slots"
# What the cluster rollout's host tasks register (roles/app_release/tasks/cluster_*.yml), in the order they run, with
# the phase (and the step the controller ran itself) each one records: a host's record is folded from them at each
# read, no task keeps it (a set_fact after each phase was one more task per host on the rollout's clock).
REGISTERS = (
    ("__app_release_cluster_begin", "begin", ""),
    ("__app_release_cluster_rebegin", "begin", ""),
    ("__app_release_cluster_backup", "prepare", "backup"),
    ("__app_release_cluster_prepare", "prepare", ""),
    ("__app_release_cluster_start", "start", ""),
    ("__app_release_cluster_switch", "switch", ""),
    ("__app_release_cluster_drain", "settle", ""),
)


def _vars(hostvars: Any, host: str) -> Mapping[str, Any]:
    try:
        found = hostvars[host]
    except (KeyError, TypeError):
        return {}
    return found if isinstance(found, Mapping) or hasattr(found, "get") else {}


# The host variables the topology's rules read here: the address, and the rollout in batches' setting (an edge
# routes only to its own host's colours then, and nothing is published for another edge).
_HOST_VARS = ("slipway_private_address", "slipway_rollout_batch_size")


def _addresses(hostvars: Any, hosts: list[str]) -> dict[str, dict[str, Any]]:
    return {host: {name: _vars(hostvars, host).get(name) for name in _HOST_VARS} for host in hosts}


def _refused(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except load_contract().InputRefused as err:
        raise AnsibleFilterError(str(err)) from err


def rollout_hosts(groups: Any, env: Any, hostvars: Any) -> dict[str, list[Any]]:
    """{one_host, apps, first_app, edges, serial}: `hostvars` for the environment's slipway_rollout_batch_size."""
    if not isinstance(groups, Mapping):
        raise AnsibleFilterError(f"rollout_hosts: give Ansible's groups, not {type(groups).__name__}")
    env = str(env or "")
    hosts = list(groups.get(env) or []) if env else []
    found: dict[str, list[Any]] = _refused(load_topology().rollout_hosts, env, groups,
                                           _addresses(hostvars, hosts))
    return found


def publish_address(groups: Any, env: Any, hostvars: Any, host: str) -> str:
    env = str(env or "")
    hosts = list(groups.get(env) or []) if env and isinstance(groups, Mapping) else []
    address: str = _refused(load_topology().publish_address, env, groups, _addresses(hostvars, hosts), str(host))
    return address


def edge_members(  # noqa: PLR0917 - a Jinja filter's arguments are positional
    services: Any, local: Any, groups: Any, env: Any, hostvars: Any, edge: str
) -> dict[str, Any]:
    """service -> colour -> [{name, address, port, enabled_by}] for the edge `edge`."""
    env = str(env or "")
    hosts = list(groups.get(env) or []) if env and isinstance(groups, Mapping) else []
    sources = _refused(load_topology().edge_sources, env, groups, _addresses(hostvars, hosts), str(edge))
    remote = []
    for app in sources["remote"]:
        table = _vars(hostvars, app["host"]).get(SLOTS_FACT)
        if not isinstance(table, Mapping) or not isinstance(table.get("slots"), Mapping):
            raise AnsibleFilterError(
                f"the edge {edge} needs the address slots of app host {app['host']}, which this run did not read: "
                "run playbooks/infra.yml for the whole environment (its play on the app hosts reads them), "
                "not only the edge's role or hosts")
        remote.append({**app, "slots": table["slots"]})
    out = {}
    for service in services or []:
        name = str(service["name"])
        hosts_of = []
        for app in remote:
            if name not in app["slots"]:
                raise AnsibleFilterError(f"app host {app['host']} has no address slot for {name}: run "
                                         "playbooks/infra.yml for the whole environment")
            hosts_of.append({"index": app["index"], "address": app["address"], "slot": int(app["slots"][name])})
        mine = (local or {}).get(name) if sources["local"] else None
        out[name] = _refused(load_cluster().edge_members, name, int(service.get("replicas") or 1),
                             int(service["port"]), mine, hosts_of)
    return out


def _batch_calls(item: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The calls of a `slipway-release batch` result (its stdout's `results`), None when `item` is no batch's."""
    text = item.get("stdout")
    if not isinstance(text, str) or not text.lstrip().startswith('{"results"'):
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    calls = found.get("results") if isinstance(found, Mapping) else None
    return [c for c in calls if isinstance(c, Mapping)] if isinstance(calls, list) else None


def _answering(item: Any) -> Any:
    """The result that answers for the service in a looped host_command item: the item itself, or, for the settle's
    batch (tasks/cluster_settle.yml), its `run` call (the drain and the record): None when the batch had none (a noop
    or stopped service: only the rollout's record and the jobs' sync)."""
    if not isinstance(item, Mapping) or item.get("skipped") or item.get("unreachable"):
        return item
    calls = _batch_calls(item)
    if calls is None:
        return item
    runs = [c for c in calls if "run" in (c.get("argv") or [])]
    if not runs:
        return None
    return {**item, "rc": runs[0].get("rc", 1), "stdout": runs[0].get("stdout", ""),
            "stderr": runs[0].get("stderr", "")}


def batch_failed(result: Any, commands: Any) -> list[str]:
    """The calls of a batch's result (a host_command item running `slipway-release batch`) that failed and are one of
    `commands` (a command name in their argv: `record-rollout`, `jobs`), each as `<command>: exit N: <stderr>`; the
    batch itself when it exited non-zero without answering (a result that is no batch's: [] when it exited 0). The
    settle's failed_when: the old colour's stop failing does not fail the task (the release is live everywhere), the
    rollout's record or the jobs' sync failing does."""
    if not isinstance(result, Mapping):
        return []
    calls = _batch_calls(result)
    if calls is None:  # the batch itself did not answer (the program could not run, or crashed): every call failed
        return [] if result.get("rc", 0) == 0 else [
            f"batch: exit {result.get('rc')}: {str(result.get('stderr') or result.get('msg') or '').strip()[-500:]}"]
    wanted = [str(c) for c in commands or []]
    out = []
    for call in calls:
        argv = [str(a) for a in call.get("argv") or []]
        named = [c for c in wanted if c in argv]
        if named and call.get("rc") != 0:
            out.append(f"{named[0]}: exit {call.get('rc')}: {str(call.get('stderr') or '').strip()[-500:]}")
    return out


def cluster_record(results: Any, previous: Any, phase: str, step: str = "") -> dict[str, Any]:
    """This host's record after a looped task of `phase` (each item: a host_command result with the service in
    `__app_release_svc`, or a skipped item, left out). With `step`, the items are a command the controller ran for
    that step (the backup): only a failure is recorded, the host program's answer comes next."""
    rules = load_cluster_rollout()
    mine = dict(previous or {})
    for looped in (results or {}).get("results", []) if isinstance(results, Mapping) else []:
        item = _answering(looped)
        # An item the host did not answer (skipped, or the host unreachable) records nothing: the verdict names a host
        # without the phase in its record as one that did not answer.
        if not isinstance(item, Mapping) or item.get("skipped") or item.get("unreachable") \
                or "__app_release_svc" not in item:
            continue
        name, rc = str(item["__app_release_svc"]["name"]), int(item.get("rc", 1))
        if step and rc != 0:
            why = f"{step} on the data host failed (exit {rc}): {item.get('stderr') or item.get('msg') or ''}"
            mine = rules.record_failure(mine, phase, name, step, why)
        elif not step:
            mine = rules.record(mine, phase, name, str(item.get("stdout") or ""), rc=rc,
                                stderr=str(item.get("stderr") or ""))
    return mine


def cluster_host_record(hostvars: Any, host: str) -> dict[str, Any]:
    """`host`'s record of the rollout so far (service -> phases, result, ...), from what its tasks registered."""
    registered = _vars(hostvars, str(host))
    mine: dict[str, Any] = {}
    for name, phase, step in REGISTERS:
        found = registered.get(name)
        if isinstance(found, Mapping):
            mine = cluster_record(found, mine, phase, step)
    return mine


def _records(hostvars: Any, hosts: list[str]) -> dict[str, dict[str, Any]]:
    return {host: cluster_host_record(hostvars, host) for host in hosts}


def cluster_verdict(  # noqa: PLR0917 - a Jinja filter's arguments are positional
    hostvars: Any, apps: Any, edges: Any, service: str, through: str, action: str = "deploy"
) -> dict[str, Any]:
    apps, edges = [str(h) for h in apps or []], [str(h) for h in edges or []]
    records = _records(hostvars, [*apps, *edges])
    try:
        verdict: dict[str, Any] = load_cluster_rollout().verdict(records, apps, edges, str(service), str(through),
                                                                 str(action or "deploy"))
    except ValueError as err:
        raise AnsibleFilterError(f"cluster_verdict: {err}") from err
    return verdict


def cluster_hosts(  # noqa: PLR0917 - a Jinja filter's arguments are positional
    hostvars: Any, apps: Any, edges: Any, service: str, through: str, action: str = "deploy", settling: Any = False
) -> list[dict[str, str]]:
    """Each host's result in the rollout of `service` (host, phase, result, message): the rollout's one history
    record carries them (`slipway-release record-rollout`). `settling`: written while the app hosts settle
    (slipway_core.cluster_rollout.host_results)."""
    apps, edges = [str(h) for h in apps or []], [str(h) for h in edges or []]
    records = _records(hostvars, [*apps, *edges])
    try:
        found: list[dict[str, str]] = load_cluster_rollout().host_results(
            records, apps, edges, str(service), str(through), str(action or "deploy"), settling=bool(settling))
    except ValueError as err:
        raise AnsibleFilterError(f"cluster_hosts: {err}") from err
    return found


def cluster_switch_back(
    hostvars: Any, apps: Any, edges: Any, service: str, action: str = "deploy"
) -> list[str]:
    """The edges that switch `service` back (slipway_core.cluster_rollout.switches_back)."""
    apps, edges = [str(h) for h in apps or []], [str(h) for h in edges or []]
    try:
        found: list[str] = load_cluster_rollout().switches_back(_records(hostvars, [*apps, *edges]), apps, edges,
                                                                 str(service), str(action or "deploy"))
    except ValueError as err:
        raise AnsibleFilterError(f"cluster_switch_back: {err}") from err
    return found


def cluster_play_hosts(
    hostvars: Any, rollout: Any, phase: str, action: str = "deploy", through: str = "switch"
) -> list[str]:
    if not isinstance(rollout, Mapping):
        raise AnsibleFilterError(f"cluster_play_hosts: give rollout_hosts' answer, not {type(rollout).__name__}")
    apps, edges = [str(h) for h in rollout.get("apps") or []], [str(h) for h in rollout.get("edges") or []]
    records = _records(hostvars, [*apps, *edges])
    try:
        found: list[str] = load_cluster_rollout().play_hosts(records, apps, edges, str(phase), str(action or "deploy"),
                                                               str(through or "switch"))
    except ValueError as err:
        raise AnsibleFilterError(f"cluster_play_hosts: {err}") from err
    return found


def cluster_results(  # noqa: PLR0917 - a Jinja filter's arguments are positional
    services: Any, hostvars: Any, apps: Any, edges: Any, host: str, registered: Any, through: str = "switch",
    action: str = "deploy",
) -> list[Any]:
    """The result items of this app host (`slipway_results`, docs/cli-json.md), one per service: the host's last
    answer (from `registered`, newest first: finish, then drain), or its record; a service the cluster rollout
    stopped is `failed` here too (or `unknown` when the host's cleanup said so), with the verdict's phase and message
    naming the host that failed. `through`: the last phase that ran (`begin` in check mode: only the plan)."""
    contract = load_contract()
    out = []
    for service in services or []:
        name = str(service["name"])
        answer = None
        for loop in registered or []:
            for looped in (loop or {}).get("results", []) if isinstance(loop, Mapping) else []:
                item = _answering(looped)
                if isinstance(item, Mapping) and not item.get("skipped") and "rc" in item \
                        and str((item.get("__app_release_svc") or {}).get("name")) == name:
                    answer = contract.parse_result(item.get("stdout", ""))
            if answer is not None:
                break
        mine = cluster_host_record(hostvars, host).get(name) or {}
        verdict = cluster_verdict(hostvars, apps, edges, name, through, action)
        if answer is None:
            answer = contract.result(name, str(mine.get("result") or "unknown"), message=str(mine.get("message", "")))
        if verdict["failed"]:
            mine_failed = cluster_host_failure(verdict["failed"], name, host, apps, action)
            answer.update({"result": "unknown" if answer["result"] == "unknown" else "failed",
                           "failed_phase": mine_failed["phase"], "message": mine_failed["message"]})
        out.append({**answer, "host": host, "service": name,
                    "version": answer.get("version") or mine.get("version") or ""})
    return out


def cluster_host_failure(failed: Any, service: str, host: str, apps: Any, action: str = "deploy") -> dict[str, str]:
    """`verdict.failed | slipway.core.cluster_host_failure(service, host, apps, action)`: {phase, message} of the
    stopped rollout on app host `host` (slipway_core.cluster_rollout.host_failure: its own reason, the other app
    hosts' only named); {} when nothing failed."""
    if not isinstance(failed, Sequence) or isinstance(failed, str) or not all(isinstance(f, Mapping) for f in failed):
        raise AnsibleFilterError(f"cluster_host_failure: give the verdict's failed list, not {type(failed).__name__}")
    found: dict[str, str] = load_cluster_rollout().host_failure(
        str(service), [dict(f) for f in failed], str(host), [str(h) for h in apps or []], str(action or "deploy"))
    return found


def cluster_scrape_plan(
    hostvars: Any, apps: Any, edges: Any, services: Any, action: str = "deploy"
) -> list[dict[str, Any]]:
    """`hostvars | slipway.core.cluster_scrape_plan(apps, edges, services, action)`: for each service (the registry's
    entries) that went live on every edge, each app host's published targets: the input of the monitoring host's one
    `slipway-release targets` call (slipway_core.cluster_rollout.scrape_plan)."""
    apps, edges = [str(h) for h in apps or []], [str(h) for h in edges or []]
    names = [str(s["name"]) if isinstance(s, Mapping) else str(s) for s in services or []]
    records = _records(hostvars, [*apps, *edges])
    try:
        found: list[dict[str, Any]] = load_cluster_rollout().scrape_plan(records, apps, edges, names,
                                                                         str(action or "deploy"))
    except ValueError as err:
        raise AnsibleFilterError(f"cluster_scrape_plan: {err}") from err
    return found


class FilterModule:
    """Filters of the cluster rollout."""

    def filters(self) -> dict[str, Any]:
        return {"rollout_hosts": rollout_hosts, "publish_address": publish_address, "edge_members": edge_members,
                "cluster_host_record": cluster_host_record,
                "cluster_verdict": cluster_verdict,
                "cluster_results": cluster_results, "cluster_hosts": cluster_hosts,
                "cluster_play_hosts": cluster_play_hosts, "cluster_switch_back": cluster_switch_back,
                "cluster_scrape_plan": cluster_scrape_plan, "cluster_host_failure": cluster_host_failure,
                "batch_failed": batch_failed}
