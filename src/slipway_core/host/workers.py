"""A release's workers on a host: the processes other than the web one (slipway_core.worker_rules), moved by the
same rollout. Their containers per colour: `<service>-<colour>-<worker>`, then -2, -3, ... for more replicas; the
same image, environment, secrets, limits, hardening and network as the web replicas, the worker's own command, no
published port and no fixed address (nothing routes to a worker); the image's HEALTHCHECK (the web's) is replaced
by the worker's health_command, or off without one.

In a rollout: `start` with the new web colour (a kept release's workers there set aside, like its web replicas),
`gate` after the web's health gate (its health_command through docker exec exits 0, or it still runs ready_after
seconds after its start, never restarted), `stop_old` once the web switched (docker stop with the worker's
stop_timeout: SIGTERM, and that long to finish the job in hand), `discard` when anything fails before the switch.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from slipway_core import contract, release_rules, worker_rules
from slipway_core.host.docker import DockerError, labels, running
from slipway_core.host.run import Failed
from slipway_core.host.system import Background, tail_text

if TYPE_CHECKING:
    from slipway_core.host.colours import Colours

POLL = 0.25  # seconds between two looks at the workers during their gate
HEALTH_INTERVAL = "10s"  # Docker's runs of a worker's health_command once it passed its gate (`slipway status`)
LOG_LINES = 200


def names(service: str, colour: str, release: dict[str, Any] | None) -> list[str]:
    """Every worker container of a release (or spec) on a colour."""
    return [name for _, _, name in worker_rules.containers(service, colour, worker_rules.workers_of(release))]


def first_container(service: str, colour: str, release: dict[str, Any] | None) -> str:
    """A release's first container on a colour: its first web replica, or for a worker-only service (no web process)
    its first worker ('' when it has none)."""
    if release_rules.has_web(release):
        return contract.container_name(service, colour)
    return next(iter(names(service, colour, release)), "")


def aside(name: str) -> str:
    """Where `start` sets a kept release's worker aside while the new one takes its name."""
    return contract.set_aside_name(name)


def shown(service: str, colour: str, name: str) -> str:
    """A worker container as messages name it: `mailer`, `mailer-2` (its name after `<service>-<colour>-`)."""
    return name[len(f"{service}-{colour}-"):]


def kept_here(c: Colours) -> list[str]:
    """The kept release's workers on the run's colour (set aside while a new release takes the colour)."""
    kept = c.store.state().get("kept")
    return names(c.name, c.colour, kept) if (kept or {}).get("colour") == c.colour else []


def start(c: Colours) -> None:
    """docker run every worker of the new release on the run's colour (the kept release's set aside)."""
    restore_set_aside(c)  # a run killed mid-start may have left the rollback target set aside
    kept = kept_here(c)
    kept_run = str((c.store.state().get("kept") or {}).get("run_id") or "")
    new = worker_rules.containers(c.name, c.colour, worker_rules.workers_of(c.spec))
    for name in dict.fromkeys([*kept, *(n for _, _, n in new)]):
        existing = c.docker.inspect(name)
        if existing is None:
            continue
        run_id = labels(existing).get("slipway.run-id")
        # The kept release's worker is set aside (the rollback target, until the new release is live); anything
        # else there goes (this run's own from a repeated start, or a leftover while the kept one is aside already).
        if name in kept and run_id != c.run.run_id and (run_id == kept_run or c.docker.inspect(aside(name)) is None):
            c.docker.remove(aside(name))
            c.docker.rename(name, aside(name))
        else:
            c.docker.remove(name)
    workers = worker_rules.workers_of(c.spec)
    for worker, replica, name in new:
        settings = workers[worker]
        box = c.app_box(name)
        box.command = list(settings["command"])
        box.stop_timeout = int(settings["stop_timeout"])
        box.healthcheck = False  # the image's HEALTHCHECK is the web's; a health_command becomes the worker's own
        if settings["health_command"]:
            box.health_cmd, box.health_interval = shlex.join(settings["health_command"]), HEALTH_INTERVAL
        box.labels = {
            "slipway.service": c.name,
            "slipway.colour": c.colour,
            "slipway.worker": worker,
            "slipway.replica": str(replica + 1),
            "slipway.version": str(c.spec["version"]),
            "slipway.config-hash": str(c.run.data.get("config_hash", "")),
            "slipway.run-id": c.run.run_id,
        }
        try:
            c.docker.run(box)
        except DockerError as err:
            c.docker.remove(name)
            c.discard_new()
            raise Failed("start", f"docker run of worker {shown(c.name, c.colour, name)} ({name}) failed: {err}; "
                                  "the new release's processes were removed, the live release keeps running") from err


def start_kept(c: Colours, image_id: Any) -> None:
    """A rollback to the kept containers: each kept worker of the colour must be there with the kept image."""
    found = names(c.name, c.colour, c.spec)
    for name in found:
        info = c.docker.inspect(name)
        if info is None or info.get("Image") != image_id:
            raise Failed("start", f"the kept worker container {name} is gone or runs another image; deploy the "
                                  "version you want instead (slipway rollback --to starts its workers from the image)")
    for name in found:
        c.docker.start(name)


def crashed(info: dict[str, Any] | None, restarted_before: bool = False) -> str:
    """'' while a worker runs and never restarted (a kept container started again may have restarted in its
    earlier life: `restarted_before`); else what happened (exited N, restarting)."""
    state = (info or {}).get("State") or {}
    if info is None:
        return "disappeared"
    restarts = 0 if restarted_before else int((info or {}).get("RestartCount") or 0)
    if not running(info) or state.get("Restarting") or restarts > 0:
        return f"exited {state.get('ExitCode')}" + (f" ({state['Error']})" if state.get("Error") else "")
    return ""


def last_exit(c: Colours, name: str, problem: str) -> str:
    """A crashed worker's exit status: Docker's restart policy may have started it again (its status then reads 0),
    so look again for a moment (a crash loop exits again within its backoff) to name the status it exits with."""
    info = c.docker.inspect(name)
    restarts = int((info or {}).get("RestartCount") or 0)
    if not running(info) or not restarts:
        return problem
    for _ in range(20):
        c.host.clock.sleep(0.1)
        info = c.docker.inspect(name)
        state = (info or {}).get("State") or {}
        if info is not None and (not running(info) or state.get("Restarting")):
            return f"exited {state.get('ExitCode')} (restarted {restarts} time(s) by Docker)"
    return f"exited (restarted {restarts} time(s) by Docker)"


def gate(c: Colours) -> None:
    """Every worker of the new release must pass its gate (they run together; ready_after counts from `start`);
    the first that fails discards the new release's processes (Failed naming it)."""
    workers = worker_rules.workers_of(c.spec)
    if not workers:
        return
    clock = c.host.clock
    started = float(c.run.data.get("start_at") or clock.time())
    longest = max(int(w["ready_after"]) for w in workers.values())
    deadline = max(clock.time() + float(c.spec.get("health_timeout", 60)), started + longest + 1)
    pending = worker_rules.containers(c.name, c.colour, workers)
    said: dict[str, str] = {}
    while pending:
        for item in list(pending):
            worker, _, name = item
            problem = crashed(c.docker.inspect(name), c.restarts_kept)
            if problem:
                fail(c, name, f"{last_exit(c, name, problem)} during its gate")
            command = list(workers[worker]["health_command"])
            if command:
                code, output = c.docker.exec(name, command, timeout=10)
                said[name] = f"its health_command exited {code} {output.strip()[:200]}".rstrip()
                ready = code == 0
            else:
                after = int(workers[worker]["ready_after"])
                said[name] = f"it ran {clock.time() - started:.1f}s of its ready_after {after}s"
                ready = clock.time() >= started + after
            if ready:
                pending.remove(item)
        if pending and clock.time() >= deadline:
            name = pending[0][2]
            fail(c, name, f"was not ready within {deadline - started:.0f}s of its start ({said.get(name, '')})")
        if pending:
            clock.sleep(POLL)


def fail(c: Colours, name: str, problem: str) -> None:
    """A worker failed its gate: its logs kept, the new release's processes removed, Failed naming it."""
    text = c.docker.logs(name, LOG_LINES)
    path = c.store.save_log(c.run.run_id, "health", text)
    done = "stopped again" if c.restarts_kept else "removed"
    c.discard_new()
    raise Failed(
        "health",
        f"worker {shown(c.name, c.colour, name)} ({name}) {problem}. The new release's processes (web and workers) "
        f"were {done}; the live release keeps running. Its last log lines (all in {path}):\n{tail_text(text, 15)}",
    )


def discard(c: Colours) -> None:
    """The new release's workers go (a rollback's kept ones are only stopped); the kept release's come back."""
    mine = names(c.name, c.colour, c.spec)
    if c.restarts_kept:
        for name in mine:
            c.docker.stop(name, 5)
        return
    for name in mine:
        if labels(c.docker.inspect(name)).get("slipway.run-id") == c.run.run_id:
            c.docker.remove(name)
    restore_set_aside(c)


def restore_set_aside(c: Colours) -> None:
    for name in kept_here(c):
        if c.docker.inspect(aside(name)) is not None and c.docker.inspect(name) is None:
            c.docker.rename(aside(name), name)


def stop_old(c: Colours) -> Background:
    """SIGTERM to the live release's workers, each with its stop_timeout to finish the job in hand (`docker stop
    -t`), all at once in the background; value() waits for them and returns a note for the message ('' when every
    one exited 0). They stay stopped for a rollback."""
    live = c.store.state().get("live") or {}
    workers = worker_rules.workers_of(live)
    found = [(name, int(workers[worker]["stop_timeout"]))
             for worker, _, name in worker_rules.containers(c.name, str(live.get("colour", "")), workers)
             if live.get("colour") and c.docker.inspect(name) is not None]

    def stopper(name: str, grace: int) -> Background:
        return Background(lambda: c.docker.stop(name, grace))

    def stop_all() -> str:
        stops = [stopper(name, grace) for name, grace in found]
        for stop in stops:
            stop.value()
        codes = {name: ((c.docker.inspect(name) or {}).get("State") or {}).get("ExitCode") for name, _ in found}
        bad = [f"{name} exited {code}" for name, code in codes.items() if code not in (0, None)]
        return f"; old worker(s) did not stop cleanly: {', '.join(bad)}" if bad else ""

    return Background(stop_all)


def remove_set_aside(c: Colours) -> None:
    """The new release is live: the kept release's workers set aside on its colour go (the old colour's are kept)."""
    for name in kept_here(c):
        c.docker.remove(aside(name))


def not_running(service: str, release: dict[str, Any] | None, inspect: Any) -> str:
    """The first worker container of a live release that does not run ('' when all do)."""
    for name in names(service, str((release or {}).get("colour", "")), release):
        if not running(inspect(name)):
            return name
    return ""
