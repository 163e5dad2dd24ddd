"""The rollout's steps on a host, in order: begin (lock, skip-check), image, backup, migrate, start, health, switch,
drain, record. A colour is `replicas` containers (the first named <service>-<colour>, the others -2, -3, ...).
Each step is a method of Rollout; STEPS maps contract.STEPS to them (no lookup by name elsewhere).

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
from slipway_core.host import addresses, disk, health, prepare, releases
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
    shaped = {k: spec.get(k) for k in HASHED}
    replicas = int(spec.get("replicas") or 1)
    if replicas != 1:  # hashed only then: a release recorded before replicas existed still matches
        shaped["replicas"] = replicas
    canon = json.dumps(shaped, sort_keys=True, separators=(",", ":"))
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
    try:
        contract.check_keep_releases(int(spec.get("keep_releases") or contract.KEEP_RELEASES_DEFAULT))
        contract.check_replicas(int(spec.get("replicas") or 1))
    except (contract.InputRefused, ValueError) as err:
        raise Failed("preflight", f"the release on stdin: {err} (app_release_keep_releases, replicas)",
                     contract.EXIT_USAGE) from err
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

    @property
    def replicas(self) -> int:
        """This release's containers per colour."""
        return int(self.spec.get("replicas") or 1)

    @property
    def restarts_kept(self) -> bool:
        """A rollback to the kept release: it starts the kept (stopped) containers instead of new ones."""
        return self.run.data.get("action") == "rollback" and not self.run.data.get("to_release")

    def container(self, colour: str | None = None, replica: int = 0) -> str:
        return contract.container_name(self.name, colour or self.colour, replica)

    def containers(self, colour: str | None = None, replicas: int | None = None) -> list[str]:
        """Every replica's container of a colour (this release's count unless `replicas` says otherwise)."""
        return contract.colour_containers(self.name, colour or self.colour, replicas or self.replicas)

    def set_aside(self, colour: str, replica: int = 0) -> str:
        return contract.kept_container_name(self.name, colour, replica)

    def recorded_replicas(self, which: str) -> int:
        """The replicas of the state's `live` or `kept` release (1 for a release recorded before replicas)."""
        return int((self.store.state().get(which) or {}).get("replicas") or 1)

    def target(self, replica: int = 0) -> health.Target:
        s = self.spec
        return health.Target(self.container(replica=replica), s["network"], int(s["port"]), s["health_path"],
                             s["domain"])

    def check_edge_servers(self, phase: str) -> None:
        """The edge on this host must route as many servers per colour as the release runs replicas; it learns a
        new count from the services registry when it is provisioned."""
        if self.host.proxy is None:
            return
        try:
            routed = len(self.host.proxy.colour_servers(self.name, contract.COLOURS[0]))
        except ProxyError:
            return  # an unknown service: the switch names it
        if routed == self.replicas:
            return
        if self.restarts_kept:
            raise Failed(
                phase,
                f"the kept release of {self.name} ran {self.replicas} replica(s) per colour, but the edge now routes "
                f"{routed} per colour (the services registry changed): deploy the version you want instead (the "
                "kept one too: slipway deploy --service S --version V); the live release keeps serving",
            )
        raise Failed(
            phase,
            f"{self.name} runs {self.replicas} replica(s) per colour in this release, but the edge routes "
            f"{routed} per colour: the edge learns the count from the services registry when it is provisioned. "
            "Run playbooks/infra.yml (slipway provision) for the environment, then deploy again; the live "
            "release keeps serving",
        )

    # ----------------------------------------------------------------------------------------------- begin
    def live_release(self) -> tuple[dict[str, Any] | None, str]:
        """The live release if its container runs healthy and the proxy routes it; else (None, why)."""
        live = self.store.live()
        if not live:
            return None, "no live release recorded"
        for name in self.containers(live["colour"], int(live.get("replicas") or 1)):
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
            and int(current.get("replicas") or 1) == self.replicas
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
            self.check_edge_servers("lock")
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
        """Put the containers set aside by `start` back under their colour's names (the new ones are gone)."""
        for replica in range(self.recorded_replicas("kept")):
            aside, name = self.set_aside(colour, replica), self.container(colour, replica)
            if self.docker.inspect(aside) is not None and self.docker.inspect(name) is None:
                self.docker.rename(aside, name)

    def discard_new(self) -> bool:
        """The new colour goes: out of the proxy's rotation, then removed (the kept release put back); a rollback's
        kept containers are only stopped. True when this run's containers were removed."""
        if self.host.proxy is not None and self.host.proxy.live(self.name) != self.colour:
            with contextlib.suppress(ProxyError):  # the proxy is down or never had the colour: nothing routes there
                self.host.proxy.set_server(self.name, self.colour, "state drain")
        if self.restarts_kept:
            for name in self.containers():
                self.docker.stop(name, 5)
            return False
        removed = False
        for name in self.containers():
            if labels(self.docker.inspect(name)).get("slipway.run-id") == self.run.run_id:
                self.docker.remove(name)
                removed = True
        self.restore_set_aside(self.colour)
        return removed

    def remove_all(self, names: list[str]) -> None:
        for name in names:
            self.docker.remove(name)

    def save_logs(self, what: str, replica: int = 0) -> tuple[str, str]:
        text = self.docker.logs(self.container(replica=replica), LOG_LINES)
        return self.store.save_log(self.run.run_id, what, text), tail_text(text, 15)

    def start(self) -> None:
        """docker run every replica of the idle colour (a kept release there is set aside until the rollout
        succeeds); do not wait for them: the health gate does, so the controller's next task overlaps their boot."""
        colour, name = self.colour, self.container()
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
            kept_here = (state.get("kept") or {}).get("colour") == colour
            self.run.data["start_at"] = self.host.clock.time()
            for replica in range(max(self.replicas, self.recorded_replicas("kept") if kept_here else 0)):
                self.start_replica(replica, kept_here)
            self.prepare_proxy()

    def start_replica(self, replica: int, kept_here: bool) -> None:
        """One replica's container (past this release's count: only the kept release's container set aside)."""
        spec, colour, name = self.spec, self.colour, self.container(replica=replica)
        c = spec.get("container") or {}
        try:
            ip = addresses.colour(self.docker, spec["network"], self.name, colour, self.host.slots, replica=replica)
        except addresses.AddressError as err:
            self.discard_new()
            raise Failed("start", f"{name} has no fixed address: {err}") from err
        try:
            existing = self.docker.inspect(name)
            if existing is not None:
                ours = labels(existing).get("slipway.run-id") == self.run.run_id  # a repeated start of this run
                if kept_here and not ours:
                    self.docker.rename(name, self.set_aside(colour, replica))  # the rollback target, until we succeed
                else:
                    self.docker.remove(name)
            if replica >= self.replicas:
                return
            box = prepare.container_spec(self.spec, name, {**spec["env"], **(spec.get("secret_env") or {})}, True, [])
            box.ip = ip
            box.hosts = addresses.pinned_hosts(self.docker, spec["network"], list(spec.get("pin_hosts") or []))
            box.restart_policy = str(c.get("restart_policy", "unless-stopped"))
            box.stop_timeout = int(c.get("stop_grace_period", 30))
            box.health_interval = str(c.get("health_interval", "1s"))
            box.labels = {
                "slipway.service": self.name,
                "slipway.colour": colour,
                "slipway.replica": str(replica + 1),
                "slipway.version": spec["version"],
                "slipway.config-hash": self.run.data["config_hash"],
                "slipway.run-id": self.run.run_id,
            }
            self.docker.run(box)
        except DockerError as err:
            self.docker.remove(name)
            self.discard_new()
            raise Failed("start", f"docker run of {name} failed: {err}") from err

    def prepare_proxy(self) -> None:
        """Have the proxy start fresh checks of the new colour now (best effort: the switch does it otherwise)."""
        try:
            if self.host.proxy is not None:
                self.host.proxy.prepare(self.name, self.colour)
                self.run.data["proxy_prepared"] = True
        except ProxyError:
            self.run.data["proxy_prepared"] = False

    def health(self) -> None:
        """Every replica of the new colour must become healthy within health_timeout (they boot together), or the
        colour is discarded (the live one serves on)."""
        with self.run.phase("health"):
            deadline = self.host.clock.time() + float(self.spec.get("health_timeout", 60))
            verified = []
            for replica in range(self.replicas):
                left = max(deadline - self.host.clock.time(), 1.0)
                verdict = health.gate(self.docker, self.host.clock, self.host.http, self.target(replica), left)
                if replica == 0:
                    took = health.start_to_healthy(
                        self.docker.inspect(self.container()), float(self.run.data.get("start_at", 0)),
                        self.host.clock.time(),
                    )
                    if took is not None:
                        self.run.data["start_to_healthy"] = took
                if not verdict.healthy:
                    path, tail = self.save_logs("health", replica)
                    self.discard_new()
                    what = f"{self.container(replica=replica)} was" if self.replicas == 1 else (
                        f"{self.container(replica=replica)} (replica {replica + 1} of {self.replicas}) and the "
                        "other replicas of its colour were")
                    raise Failed(
                        "health",
                        f"{verdict.problem}. {what} "
                        f"{'stopped again' if self.restarts_kept else 'removed'}; the live "
                        f"release keeps serving. Its last log lines (all in {path}):\n{tail}",
                    )
                verified.append(verdict.address)
            self.run.data["healthy_addresses"] = verified

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
                    verified=[str(a) for a in self.run.data.get("healthy_addresses") or [] if a],
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
                "targets": [f"{name}:{self.spec['port']}" for name in self.containers()],
                "labels": {"service": self.name, "colour": self.colour, "version": self.run.data["version"]},
            }
        ]
        write_json(os.path.join(directory, f"{self.name}.json"), targets, 0o644)

    def drain(self) -> None:
        """The old colour has no session left (switch_over waited): stop it gracefully; kept for a rollback."""
        old = contract.other_colour(self.colour)
        grace = float(self.spec.get("stop_grace_period", 30))
        with self.run.phase("drain"):
            aside = [self.set_aside(self.colour, r) for r in range(self.recorded_replicas("kept"))]
            set_aside = Background(lambda: self.remove_all(aside))
            for name in self.containers(old, self.recorded_replicas("live")):
                if self.docker.inspect(name) is not None:
                    self.docker.stop(name, grace)
            set_aside.value()

    def record(self) -> None:
        """The new release is live: state.json, a history line, the lock released, the answer `deployed`."""
        data, spec = self.run.data, self.spec
        with self.run.phase("record"):
            state = self.store.state()
            live = state.get("live")
            if self.restarts_kept:
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
                    # Its own Alembic head: the schema its migration left, or the rolled-back-to release's own.
                    "alembic_head": data.get("alembic_head") or data.get("migration_revision"),
                    "replicas": self.replicas,
                    "deployed_at": self.host.clock.iso(),
                    "run_id": self.run.run_id,
                    **{k: spec[k] for k in ("network", "port", "domain", "health_path")},
                }
                outcome, verb = (
                    ("rolled-back", f"rolled back to {spec['version']} on {self.colour} (from its kept image)")
                    if data.get("to_release") else ("deployed", f"{spec['version']} is live on {self.colour}"))
            if (live or {}).get("run_id") != self.run.run_id:  # a re-run after a crash does not record twice
                keep = int(spec.get("keep_releases") or contract.KEEP_RELEASES_DEFAULT)
                # A host recorded before the list existed starts it from its live and kept releases.
                known = state.get("releases") or [r for r in (live, state.get("kept")) if isinstance(r, dict)]
                self.store.save_state(new_live, live, releases.remember(known, new_live, keep))
                self.run.history_line(outcome, new_live, live, self.host)
            previous = live if (live or {}).get("run_id") != self.run.run_id else state.get("kept")
            repository = str(new_live.get("image") or spec["image_ref"]).rpartition(":")[0]
            data["note"] = str(data.get("note", "")) + releases.prune_note(
                self.docker, self.store, repository, self.store.root)
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
