"""Read-only answers: each service's live colour, version and health; the release history."""

from __future__ import annotations

from typing import Any

from slipway_core import contract, release_rules, worker_rules
from slipway_core.host import job_records
from slipway_core.host.docker import running
from slipway_core.host.lock import Lock, describe
from slipway_core.host.proxy import ProxyError
from slipway_core.host.release import Host
from slipway_core.host.store import Store


def status(host: Host, store: Store) -> dict[str, Any]:
    state = store.state()
    live, kept = state.get("live"), state.get("kept")
    item: dict[str, Any] = {"service": store.service, "colour": "", "version": "", "healthy": False}
    if not live:
        item["message"] = "never deployed"
    else:
        item.update({"colour": live["colour"], "version": live["version"]})
        replicas = release_rules.replicas_of(live)
        names = contract.colour_containers(store.service, live["colour"], replicas)
        infos = [host.docker.inspect(name) for name in names]
        checked = [host.healthy(store.service, live["colour"], info) for info in infos]
        try:  # a worker-only service has nothing routed: its live colour is its workers'
            web = release_rules.has_web(live)
            routed = host.proxy.live(store.service) if host.proxy is not None and web else live["colour"]
        except ProxyError:
            routed = None
        up = all(running(info) for info in infos)
        item["workers"] = worker_states(host, store.service, live)
        # Running passes (its gate proved it); Docker's first health_command runs may still be starting.
        workers_up = all(w["state"] in ("running", "running, healthy", "running, starting") for w in item["workers"])
        item["healthy"] = up and workers_up and all(ok for ok, _ in checked) and routed == live["colour"]
        status_ = next((words for ok, words in checked if not ok), checked[0][1] if checked else "")
        what = "container" if replicas == 1 else f"{replicas} replicas"
        down = [name for name, info in zip(names, infos) if not running(info)]
        parts = [f"{what} {'running' if up else 'NOT running'}" + (f" ({', '.join(down)})" if down and replicas > 1
                                                                    else "") + (f", {status_}" if status_ else "")
                 ] if web else ["worker-only (no web process)"]
        if item["workers"]:
            parts.append("workers: " + ", ".join(f"{w['name']} {w['state']}" for w in item["workers"]))
        if routed != live["colour"]:
            parts.append(f"proxy routes {routed}")
        if kept:
            parts.append(f"kept {kept['version']} on {kept['colour']}")
        item["message"] = "; ".join(parts)
    held = Lock(store).held()
    if held:
        item["message"] += f"; LOCKED by {describe(held)}"
    job_records.annotate(item, store)  # scheduled jobs (on the host that runs them): a failing one is a problem
    return item


def worker_states(host: Host, service: str, live: dict[str, Any]) -> list[dict[str, str]]:
    """Each worker container of the live release: its name, its worker and Docker's state (running, with its
    health_command's verdict when it has one; exited N, restarting, missing)."""
    out = []
    for worker, _, name in worker_rules.containers(service, live["colour"], worker_rules.workers_of(live)):
        state = (host.docker.inspect(name) or {}).get("State")
        if state is None:
            words = "missing"
        elif state.get("Restarting"):
            words = "restarting"
        elif state.get("Running"):
            words = "running" + (f", {health}" if (health := (state.get("Health") or {}).get("Status")) else "")
        else:
            words = f"exited {state.get('ExitCode')}"
        out.append({"name": name, "worker": worker, "state": words})
    return out


def history(stores: list[Store], limit: int) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for store in stores:
        lines += store.history(limit)
    return sorted(lines, key=lambda line: str(line.get("time")))
