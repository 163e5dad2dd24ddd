"""The rollout's steps on a host, in order: begin (lock, skip-check), image, backup, migrate, start, health, switch,
drain, record. Each step is a method of Rollout; STEPS maps contract.STEPS to them (no lookup by name elsewhere).

`begin` decides once what is left (`todo`); `advance` runs the steps it is asked for, in order, skipping those the
run did already (a re-run after a crash between two steps repeats nothing). Any failure before the switch removes
the new colour and leaves the live one serving; a failure after it switches back (proxy.switch_over).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from slipway_core import contract
from slipway_core.host import addresses, disk, health, prepare
from slipway_core.host.docker import Docker, DockerError, health_status, labels, running
from slipway_core.host.lock import Lock
from slipway_core.host.proxy import Confirm, Proxy, ProxyError
from slipway_core.host.run import Failed, Run
from slipway_core.host.store import Store
from slipway_core.host.system import Background, Clock, tail_text, write_json

LOG_LINES = 200
REQUIRED = ("service", "version", "image_ref", "port", "domain", "health_path", "network", "env")
SECRET = ("secret_env", "migrate_secret_env", "registry_username", "registry_password")
HASHED = ("port", "domain", "health_path", "network", "env", "secret_env", "resources", "container", "pin_hosts")


@dataclass
class Host:
    """What this host offers a rollout: its engine, clock and HTTP client, and the edge proxy when it runs here."""

    docker: Docker
    clock: Clock
    http: health.HttpGet
    proxy: Proxy | None
    holder: str = "unknown"
    audit: dict[str, str] = field(default_factory=dict)  # contract.AUDIT_KEYS: who asked for this run, from where
    slots: addresses.Slots = field(default_factory=addresses.Slots)  # each service's fixed addresses on this host

    @property
    def who(self) -> str:
        """The actor of the run (the audit's), else the holder the controller named."""
        return self.audit.get("actor") or self.holder

    def healthy(self, service: str, colour: str, info: dict[str, Any] | None) -> tuple[bool, str]:
        """Whether a colour's running container is healthy, and Docker's word for it. Docker's status counts unless
        it is stale (its checks stopped: Docker 20.10 after a live restore); then the edge's own check of the colour
        decides (UP with a passing layer-7 check), and the words say so."""
        status = health_status(info)
        if status in (None, "healthy") or not health.stale(info, self.clock.time()):
            return status in (None, "healthy"), status or ""
        try:
            edge = self.proxy.servers(service)[colour] if self.proxy is not None else {}
        except ProxyError:
            edge = {}
        ok = str(edge.get("status", "")).startswith("UP") and str(edge.get("check", "")).startswith("L7OK")
        return ok, f"Docker's {status} is stale (its checks stopped), the edge's check {'passes' if ok else 'fails'}"


def config_hash(spec: dict[str, Any]) -> str:
    """Everything that shapes the running container except the image (compared by its id)."""
    canon = json.dumps({k: spec.get(k) for k in HASHED}, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()


def public(spec: dict[str, Any]) -> dict[str, Any]:
    """The release without its secrets: what a run's record keeps (recovery reads it)."""
    return {k: v for k, v in spec.items() if k not in SECRET}


def check_spec(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise Failed("preflight", "the release on stdin is not a JSON object", contract.EXIT_USAGE)
    missing = [key for key in REQUIRED if key not in spec]
    if missing:
        raise Failed("preflight", f"the release on stdin lacks {missing[0]!r}", contract.EXIT_USAGE)
    return spec


class Rollout:
    """One service's rollout (or rollback) on this host, for one run."""

    def __init__(self, host: Host, store: Store, run: Run, spec: dict[str, Any]) -> None:
        self.host, self.store, self.run, self.spec = host, store, run, spec
        self.docker = host.docker
        self.lock = Lock(store)
        self.name = store.service

    # ----------------------------------------------------------------------------------------------- names
    @property
    def colour(self) -> str:
        return str(self.run.data["colour"])

    def container(self, colour: str | None = None) -> str:
        return contract.container_name(self.name, colour or self.colour)

    def set_aside(self, colour: str) -> str:
        return contract.kept_container_name(self.name, colour)

    def target(self) -> health.Target:
        s = self.spec
        return health.Target(self.container(), s["network"], int(s["port"]), s["health_path"], s["domain"])

    # ----------------------------------------------------------------------------------------------- begin
    def live_release(self) -> tuple[dict[str, Any] | None, str]:
        """The live release if its container runs healthy and the proxy routes it; else (None, why)."""
        live = self.store.live()
        if not live:
            return None, "no live release recorded"
        name = contract.container_name(self.name, live["colour"])
        info = self.docker.inspect(name)
        if not running(info):
            return None, f"{name} is not running"
        ok, status = self.host.healthy(self.name, live["colour"], info)
        if not ok:
            return None, f"{name} is {status}"
        if (info or {}).get("Image") != live.get("image_id"):
            return None, f"{name} runs another image than recorded"
        if self.host.proxy is not None and self.host.proxy.live(self.name) != live["colour"]:
            return None, f"the proxy does not route {self.name} to {live['colour']}"
        return live, "live and healthy"

    def compare(self) -> tuple[bool, str, dict[str, Any] | None, str | None]:
        """(unchanged, why, the live release, the wanted image's id on this host)."""
        current, why = self.live_release()
        want_id = self.docker.image_id(self.spec["image_ref"])
        same = (
            current is not None
            and want_id is not None
            and current.get("image_id") == want_id
            and current.get("config_hash") == config_hash(self.spec)
            and current.get("version") == self.spec["version"]
        )
        return same, why, current, want_id

    def plan(self) -> dict[str, Any]:
        """Check mode: what a deploy would do; no lock, no run record, no change."""
        same, why, current, _ = self.compare()
        return contract.result(
            self.name,
            "noop" if same else "planned",
            version=self.spec["version"],
            previous_version=(current or {}).get("version", ""),
            colour=(current or {}).get("colour", ""),
            run_id=self.run.run_id,
            message="unchanged" if same else f"would deploy {self.spec['version']} ({why})",
        )

    def begin(self, stale_after: float, force: bool, start_when_ready: bool) -> dict[str, Any]:
        """Lock, compare with the live release: noop, or continue with the steps left (`todo`)."""
        spec, data = self.spec, self.run.data
        data.update(
            {"action": "deploy", "version": spec["version"], "image": spec["image_ref"], "release": public(spec)}
        )
        disk.check_upload(self.docker, self.store.paths.image_archive, spec)  # refused before the lock: nothing changed
        with self.run.phase("lock"):
            self.lock.take(self.run.run_id, self.host.who, "deploy", spec["version"], stale_after, self.host.audit)
        with self.run.phase("skip-check"):
            state = self.store.state()
            live = state.get("live") or {}
            same, why, current, want_id = self.compare()
            data.update({"previous_version": live.get("version", ""), "config_hash": config_hash(spec)})
        if same and not force:
            self.lock.release(self.run.run_id)
            return self.run.answer(
                "noop",
                colour=live["colour"],
                previous_version=live["version"],
                todo=[],
                message=f"{spec['version']} is already live on {live['colour']} and healthy",
            )
        # An image whose migrations already ran here (the live or the kept release) needs none: the schema is at or
        # past its head (expand/contract), and an older image's tool may not even know the newer revisions.
        ran = {(state.get(k) or {}).get("image_id") for k in ("live", "kept")} - {None}
        migrate = bool(spec.get("migrate_command")) and want_id not in ran
        todo = [
            step
            for step, due in (
                ("image", want_id is None),
                ("backup", migrate and bool(spec.get("backup_db"))),
                ("migrate", migrate),
            )
            if due
        ]
        data.update(
            {
                "colour": contract.other_colour(live["colour"]) if live.get("colour") else "blue",
                "todo": [*todo, "start", "health", "switch", "drain", "record"],
                "done": [],
                "reason": why if current is None else "the release differs from the live one",
                "upload": self.store.paths.image_archive if want_id is None else "",
            }
        )
        if start_when_ready and not todo:  # the common path: start the idle colour in this same call
            self.run.save()  # recovery must know the colour should this process die while starting it
            self.start()
            self.run.done("start")
        return self.run.answer(contract.CONTINUE)

    def advance(self, steps: list[str]) -> dict[str, Any]:
        """Run `steps` in order (those this run did already are skipped); the answer after `record` is final."""
        self.lock.heartbeat(self.run.run_id)
        for step in steps:
            if step not in self.run.data["done"]:
                self.lock.heartbeat(self.run.run_id, step)  # progress: a stale lock is one nobody touched
                STEPS[step](self)
                self.run.done(step)
        if "record" in self.run.data["done"]:
            return self.run.report()
        return self.run.answer(contract.CONTINUE)

    # ------------------------------------------------------------------------------------- start and health
    def restore_set_aside(self, colour: str) -> None:
        """Put a container set aside by `start` back under its colour's name (the new one is gone)."""
        if (
            self.docker.inspect(self.set_aside(colour)) is not None
            and self.docker.inspect(self.container(colour)) is None
        ):
            self.docker.rename(self.set_aside(colour), self.container(colour))

    def discard_new(self) -> bool:
        """The new colour goes: out of the proxy's rotation, then removed (the kept release put back); a rollback's
        kept container is only stopped. True when this run's container was removed."""
        name = self.container()
        if self.host.proxy is not None and self.host.proxy.live(self.name) != self.colour:
            with contextlib.suppress(ProxyError):  # the proxy is down or never had the colour: nothing routes there
                self.host.proxy.set_server(self.name, self.colour, "state drain")
        if self.run.data.get("action") == "rollback":
            self.docker.stop(name, 5)
            return False
        ours = labels(self.docker.inspect(name)).get("slipway.run-id") == self.run.run_id
        if ours:
            self.docker.remove(name)
        self.restore_set_aside(self.colour)
        return ours

    def save_logs(self, what: str) -> tuple[str, str]:
        text = self.docker.logs(self.container(), LOG_LINES)
        return self.store.save_log(self.run.run_id, what, text), tail_text(text, 15)

    def start(self) -> None:
        """docker run the idle colour (the kept container is set aside until the rollout succeeds); do not wait for
        it: the health gate does, so the controller's next task overlaps its boot."""
        spec, colour, name = self.spec, self.colour, self.container()
        c = spec.get("container") or {}
        with self.run.phase("start"):
            state = self.store.state()
            # Never replace what serves: the recorded live colour, or the one the proxy routes while its container
            # runs (a failed switch-back leaves them apart; a fresh edge names a colour with no container yet).
            routed = self.host.proxy.live(self.name) if self.host.proxy is not None else None
            if colour == (state.get("live") or {}).get("colour") or (
                colour == routed and running(self.docker.inspect(name))
            ):
                raise Failed("start", f"{name} is the live colour; refusing to replace it", contract.EXIT_NEEDS_PERSON)
            self.restore_set_aside(colour)  # a run killed mid-start may have left the rollback target set aside
            try:
                ip = addresses.colour(self.docker, spec["network"], self.name, colour, self.host.slots)
            except addresses.AddressError as err:
                raise Failed("start", f"{name} has no fixed address: {err}") from err
            try:
                existing = self.docker.inspect(name)
                if existing is not None:
                    ours = labels(existing).get("slipway.run-id") == self.run.run_id  # a repeated start of this run
                    if (state.get("kept") or {}).get("colour") == colour and not ours:
                        self.docker.rename(name, self.set_aside(colour))  # the rollback target, until we succeed
                    else:
                        self.docker.remove(name)
                box = prepare.container_spec(
                    self.spec, name, {**spec["env"], **(spec.get("secret_env") or {})}, True, []
                )
                box.ip = ip
                box.hosts = addresses.pinned_hosts(self.docker, spec["network"], list(spec.get("pin_hosts") or []))
                box.restart_policy = str(c.get("restart_policy", "unless-stopped"))
                box.stop_timeout = int(c.get("stop_grace_period", 30))
                box.health_interval = str(c.get("health_interval", "1s"))
                box.labels = {
                    "slipway.service": self.name,
                    "slipway.colour": colour,
                    "slipway.version": spec["version"],
                    "slipway.config-hash": self.run.data["config_hash"],
                    "slipway.run-id": self.run.run_id,
                }
                self.run.data["start_at"] = self.host.clock.time()
                self.docker.run(box)
            except DockerError as err:
                self.docker.remove(name)
                self.restore_set_aside(colour)
                raise Failed("start", f"docker run of {name} failed: {err}") from err
            self.prepare_proxy()

    def prepare_proxy(self) -> None:
        """Have the proxy start fresh checks of the new colour now (best effort: the switch does it otherwise)."""
        try:
            if self.host.proxy is not None:
                self.host.proxy.prepare(self.name, self.colour)
                self.run.data["proxy_prepared"] = True
        except ProxyError:
            self.run.data["proxy_prepared"] = False

    def health(self) -> None:
        """The new colour must become healthy within health_timeout, or it is discarded (the live one serves on)."""
        with self.run.phase("health"):
            verdict = health.gate(
                self.docker, self.host.clock, self.host.http, self.target(), float(self.spec.get("health_timeout", 60))
            )
            took = health.start_to_healthy(
                self.docker.inspect(self.container()), float(self.run.data.get("start_at", 0)), self.host.clock.time()
            )
            if took is not None:
                self.run.data["start_to_healthy"] = took
            self.run.data["healthy_address"] = verdict.address
            if not verdict.healthy:
                path, tail = self.save_logs("health")
                self.discard_new()
                raise Failed(
                    "health",
                    f"{verdict.problem}. {self.container()} was "
                    f"{'stopped again' if self.run.data.get('action') == 'rollback' else 'removed'}; the live "
                    f"release keeps serving. Its last log lines (all in {path}):\n{tail}",
                )

    # ------------------------------------------------------------------------------- switch, drain, record
    def switch(self) -> None:
        """One call to the edge: switch, confirm the new version through it, drain the old colour."""
        proxy, spec = self.host.proxy, self.spec
        if proxy is None:
            raise Failed(
                "switch",
                "no edge proxy runs on this host (its settings are missing); apply the edge_proxy role first",
                contract.EXIT_NEEDS_PERSON,
            )
        # The schema revision cannot change while this run holds the lock: read it during the switch.
        revision = Background(
            lambda: self.run.data.get("migration_revision") or prepare.revision(self.docker, self.spec)
        )
        check = Confirm(
            version=str(self.run.data.get("version") or spec["version"]),
            path=str(spec.get("confirm_path") or ""),
            tls=bool(spec.get("proxy_tls")),
            port=int(spec.get("proxy_port", 80)),
            attempts=int(spec.get("confirm_attempts", 25)),
        )
        try:
            with self.run.phase("switch"):
                moved = proxy.switch_over(
                    self.name,
                    self.colour,
                    check,
                    float(spec.get("switch_timeout", 15)),
                    float(spec.get("drain_timeout", 30)),
                    prepared=bool(self.run.data.get("proxy_prepared")),
                    verified_address=self.run.data.get("healthy_address") or None,
                )
        except ProxyError as err:
            self.save_logs("switch")
            code = contract.EXIT_NEEDS_PERSON if err.code == 3 else contract.EXIT_FAILED
            if code == contract.EXIT_NEEDS_PERSON and proxy.live(self.name) == self.colour:
                self.run.data["needs_person"] = True  # the proxy routes it: removing it takes the service down
            else:
                self.discard_new()
            raise Failed("switch", f"slipway-proxy switch {self.name} {self.colour}: {err}", code) from err
        self.run.data["durations"]["switch"] = moved["switch"]
        self.run.add_duration("drain", moved["drain"])
        if moved["sessions_left"]:
            self.run.data["note"] = f"; drain timed out ({moved['sessions_left']} session(s) left)"
        self.run.data["migration_revision"] = revision.value()
        self.write_file_sd()

    def write_file_sd(self) -> None:
        directory = self.spec.get("file_sd_dir")
        if not directory or not os.path.isdir(directory):
            return
        targets = [
            {
                "targets": [f"{self.container()}:{self.spec['port']}"],
                "labels": {"service": self.name, "colour": self.colour, "version": self.run.data["version"]},
            }
        ]
        write_json(os.path.join(directory, f"{self.name}.json"), targets, 0o644)

    def drain(self) -> None:
        """The old colour has no session left (switch_over waited): stop it gracefully; kept for a rollback."""
        old = contract.other_colour(self.colour)
        with self.run.phase("drain"):
            set_aside = Background(lambda: self.docker.remove(self.set_aside(self.colour)))
            if self.docker.inspect(self.container(old)) is not None:
                self.docker.stop(self.container(old), float(self.spec.get("stop_grace_period", 30)))
            set_aside.value()

    def record(self) -> None:
        """The new release is live: state.json, a history line, the lock released, the answer `deployed`."""
        data, spec = self.run.data, self.spec
        with self.run.phase("record"):
            state = self.store.state()
            live = state.get("live")
            if data.get("action") == "rollback":
                kept = state.get("kept") or {}
                new_live = {
                    **kept,
                    "deployed_at": self.host.clock.iso(),
                    "run_id": self.run.run_id,
                    "migration_revision": data.get("migration_revision") or kept.get("migration_revision"),
                }
                outcome, verb = (
                    "rolled-back",
                    f"rolled back to {data['version']} on {self.colour} (from its kept container)",
                )
            else:
                new_live = {
                    "colour": self.colour,
                    "version": spec["version"],
                    "image": spec["image_ref"],
                    "image_id": (self.docker.inspect(self.container()) or {}).get("Image"),
                    "config_hash": data["config_hash"],
                    "migration_revision": data.get("migration_revision"),
                    "deployed_at": self.host.clock.iso(),
                    "run_id": self.run.run_id,
                    **{k: spec[k] for k in ("network", "port", "domain", "health_path")},
                }
                outcome, verb = "deployed", f"{spec['version']} is live on {self.colour}"
            if (live or {}).get("run_id") != self.run.run_id:  # a re-run after a crash does not record twice
                self.store.save_state(new_live, live)
                self.run.history_line(outcome, new_live, live, self.host)
            previous = live if (live or {}).get("run_id") != self.run.run_id else state.get("kept")
        with self.run.phase("unlock"):
            self.lock.release(self.run.run_id)
        kept = f", {previous['version']} kept stopped on {previous['colour']}" if previous else ""
        self.run.answer(
            "deployed",
            previous_version=(previous or {}).get("version", ""),
            todo=[],
            message=verb + kept + str(data.get("note", "")),
        )


STEPS: dict[str, Callable[[Rollout], None]] = {
    "image": lambda r: prepare.image(r.docker, r.store, r.run, r.spec),
    "backup": lambda r: prepare.backup(r.run, r.spec),
    "migrate": lambda r: prepare.migrate(r.docker, r.store, r.run, r.spec),
    "start": Rollout.start,
    "health": Rollout.health,
    "switch": Rollout.switch,
    "drain": Rollout.drain,
    "record": Rollout.record,
}
assert tuple(STEPS) == contract.STEPS  # noqa: S101 - the table follows the contract's order
