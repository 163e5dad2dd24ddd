"""Back to a known state: roll back to the kept release, finish a run that stopped midway, release locks.

A run can stop between any two steps (a failed controller task, a cancel, a crash). The proxy's live colour is the
truth of what serves: when it already routes the new colour and that container runs, the run is rolled forward
(drain, record); otherwise the new colour is discarded and the kept release put back. Either way the lock goes
and the result says which.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from slipway_core import contract, release_rules, worker_rules
from slipway_core.host.docker import DockerError, labels, running
from slipway_core.host.lock import Lock, describe
from slipway_core.host.proxy import ProxyError
from slipway_core.host.release import Host, public
from slipway_core.host.run import Failed, Run
from slipway_core.host.steps import Rollout
from slipway_core.host.store import Store
from slipway_core.host.system import wait_for


def rollback(host: Host, store: Store, run: Run, spec: dict[str, Any], stale_after: float, *,
             begin_only: bool = False) -> dict[str, Any]:
    """Start the kept colour, health gate, switch, stop the other colour (kept in turn), record. `begin_only` (the
    cluster rollback): lock, check and answer what is left (`todo`); the controller asks for the steps with `run`,
    on every app host, as for a deploy."""
    run.data.update({"action": "rollback"})
    with run.phase("lock"):
        Lock(store).take(run.run_id, host.who, "rollback", "", stale_after, host.audit)
    state = store.state()
    live, kept = state.get("live"), state.get("kept")
    if not live or not kept:
        raise Failed(
            "preflight",
            f"{store.service} has no kept release to roll back to (live: "
            f"{(live or {}).get('version', 'none')}); deploy the version you want instead",
        )
    spec = kept_release(spec, kept)
    steps = ["start", "health", "switch", "drain", "record"]
    run.data.update(
        {
            "version": kept["version"],
            "previous_version": live["version"],
            "colour": kept["colour"],
            "image": kept.get("image"),
            "config_hash": kept.get("config_hash"),
            "release": public(spec),
            "todo": list(steps),
        }
    )
    if begin_only:
        return run.answer(contract.CONTINUE)
    return Rollout(host, store, run, spec).advance(steps)


def kept_release(spec: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    """The release a rollback to the kept containers runs: the controller's, with the kept release's own shape."""
    return {**spec, **{k: kept[k] for k in ("network", "port", "domain", "health_path") if k in kept},
            "replicas": release_rules.replicas_of(kept), "workers": worker_rules.workers_of(kept)}


def recover(host: Host, store: Store, run: Run) -> str:
    """Bring a run that stopped midway to a known end; returns a note for the message ('' when nothing to do).
    Rolled forward: the run's result becomes `deployed`."""
    data = run.data
    colour = data.get("colour")
    if not colour or data.get("result") in ("deployed", "noop") or data.get("needs_person"):
        return ""
    rollout = Rollout(host, store, run, recorded_release(data))
    live = store.live() or {}
    if live.get("run_id") == run.run_id:  # recorded; only the answer (or the unlock) was missing
        data.update({"result": "deployed", "todo": []})
        return "; it had been recorded as live before it stopped"
    if not rollout.web:
        return recover_worker_only(rollout, data)
    routed = host.proxy.live(store.service) if host.proxy is not None else None
    info = host.docker.inspect(rollout.container())
    ours = rollout.restarts_kept or labels(info).get("slipway.run-id") == run.run_id
    if routed == colour and colour != live.get("colour") and ours:
        if not running(info):
            raise Failed(
                "switch",
                f"the proxy routes {rollout.container()}, which is not running: the service is down; "
                f"start it or switch the proxy back (slipway-proxy switch {store.service} "
                f"{contract.other_colour(colour)})",
                contract.EXIT_NEEDS_PERSON,
            )
        rollout.drain()
        rollout.record()
        return "; rolled forward: the proxy already routed the new colour when the run stopped"
    return f"; removed the unfinished {rollout.container()}" if rollout.discard_new() else ""


def recover_worker_only(rollout: Rollout, data: dict[str, Any]) -> str:
    """A worker-only release has no edge to ask: past its `switch` (its new workers passed their gate, nothing else
    moves but the old workers' stop) it is rolled forward; before, its new workers are removed."""
    if "switch" in (data.get("done") or []):
        rollout.drain()
        rollout.record()
        return "; rolled forward: its new workers had passed their gate when the run stopped"
    rollout.discard_new()
    return ""


def recorded_release(data: dict[str, Any]) -> dict[str, Any]:
    """The release as the run recorded it (no secrets): recovery may run without the controller's input."""
    release = dict(data.get("release") or {})
    release.setdefault("env", {})
    return release


def finish(host: Host, store: Store, run: Run, failed_phase: str, message: str) -> dict[str, Any]:
    """The controller's last word on a run that failed outside the host program (or was interrupted): recover,
    release the lock, record the failure (unless it was rolled forward) and answer the result."""
    lock = Lock(store)
    working = lock.working(run.run_id) if lock.holds(run.run_id) else None
    if working:  # its command still works (the controller lost the connection): it ends the run itself
        answer = run.report()
        unlock_line = contract.unlock_command(host.audit.get("env", ""), store.service)
        answer.update({"result": "unknown", "failed_phase": failed_phase or answer["failed_phase"],
                       "message": f"{working}; it was left alone: it finishes the run and releases the lock itself. "
                                  f"If it hangs, stop it, then: {unlock_line}"})
        return answer
    if lock.holds(run.run_id):
        with run.phase("unlock"):
            try:
                note = recover(host, store, run)
            except (Failed, DockerError, ProxyError) as err:  # e.g. the proxy routes a stopped container
                note, run.data["needs_person"] = f"; {err}; a person must look", True
            lock.release(run.run_id)
        if run.data.get("result") in (None, contract.CONTINUE):
            phase = failed_phase if failed_phase in contract.PHASES else str(run.data.get("phase", ""))
            text = f"{message.strip()[:500]}" if message.strip() else "the run stopped before it finished"
            run.data.update({"result": "failed", "failed_phase": phase, "message": text + note, "todo": []})
            run.history_line("failed", None, store.live(), host)
        elif note:
            run.data["message"] = str(run.data.get("message", "")) + note
        run.save()
    elif not run.data.get("result"):  # it stopped before it held anything (e.g. another run's lock): nothing changed
        run.data.update({"result": "failed", "failed_phase": failed_phase or "lock", "todo": [],
                         "message": message.strip()[:500] or "the run stopped before it took the lock"})
    answer = run.report()
    if answer["result"] == contract.CONTINUE or (answer["result"] == "failed" and run.data.get("needs_person")):
        answer["result"] = "unknown"
    return answer


def idle(lock: Lock) -> Callable[[], bool]:
    """No command works for the lock's run (any more)."""
    return lambda: lock.working() is None


def unlock(  # noqa: PLR0917 - what `slipway-release unlock` was given
    host: Host, stores: list[Store], run_id: str | None, force: bool, reason: str, wait: float = 0.0
) -> dict[str, Any]:
    """Release the locks `run_id` holds (among the services given), or with force the lock of each service given,
    recovering the run that held it first; one history line each (action `unlock`, the reason, who asked). A lock
    whose run still has a host command running (after `wait` seconds for it to end) is not touched: `refused`."""
    released, refused = [], []
    for store in stores:
        lock = Lock(store)
        held = lock.held()
        if held is None and force and os.path.exists(store.paths.lock):
            held = {}  # unreadable: half-written by a run killed at that instant
        if held is None or not (force or held.get("run_id") == run_id):
            continue
        if not wait_for(host.clock, idle(lock), wait, 0.1):
            refused.append({"service": store.service, "lock": held,
                            "reason": f"{lock.working()}; the lock stays until it ends"})
            continue
        holder, note = str(held.get("run_id") or ""), ""
        run = Run(store, holder) if contract.RUN_ID_RE.fullmatch(holder) else None
        if run is not None:
            note = recover(host, store, run)
            run.save()
        lock.release(None)
        if run is not None:
            message = f"released the lock held by {describe(held)}{note}"
            run.history_line("unlocked", None, store.live(), host, action="unlock", reason=reason, message=message)
        released.append({"service": store.service, "lock": held, "note": note.lstrip("; ")})
    return {"released": released, "refused": refused}
