"""The new colour on a host: its names (a colour is `replicas` containers: <service>-<colour>, then -2, -3, ...),
starting them (a kept release there set aside until the rollout succeeds), the health gate of every replica, and
discarding them when anything fails before the switch (the kept release put back). The release's workers move with
the web replicas (workers.py: started, gated and discarded from here). Rollout (steps.py) builds the rollout's steps
on this."""

from __future__ import annotations

import contextlib
from typing import Any

from slipway_core import cluster, contract, release_rules
from slipway_core.host import addresses, health, prepare, publish, workers
from slipway_core.host.docker import ContainerSpec, DockerError, labels, running
from slipway_core.host.lock import Lock
from slipway_core.host.proxy import ProxyError
from slipway_core.host.release import Host
from slipway_core.host.run import Failed, Run
from slipway_core.host.store import Store
from slipway_core.host.system import tail_text

LOG_LINES = 200


class Colours:
    """A service's colours on this host, for one run: the new one started, gated or discarded."""

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
        return release_rules.replicas_of(self.spec)

    @property
    def web(self) -> bool:
        """Whether this release has the routed web process (a worker-only service's has none: no edge, no HTTP)."""
        return release_rules.has_web(self.spec)

    @property
    def restarts_kept(self) -> bool:
        """A rollback to the kept release: it starts the kept (stopped) containers instead of new ones."""
        return self.run.data.get("action") == "rollback" and not self.run.data.get("to_release")

    def container(self, colour: str | None = None, replica: int = 0) -> str:
        return contract.container_name(self.name, colour or self.colour, replica)

    def containers(self, colour: str | None = None, replicas: int | None = None) -> list[str]:
        """Every replica's container of a colour (this release's count unless `replicas` says otherwise)."""
        return contract.colour_containers(self.name, colour or self.colour,
                                          self.replicas if replicas is None else replicas)

    def first(self) -> str:
        """The release's first container on the run's colour: its first web replica, or (worker-only) its first
        worker (the one whose image the record keeps and whose logs a failure saves)."""
        return workers.first_container(self.name, self.colour, self.spec)

    def set_aside(self, colour: str, replica: int = 0) -> str:
        return contract.kept_container_name(self.name, colour, replica)

    def recorded_replicas(self, which: str) -> int:
        """The replicas of the state's `live` or `kept` release (1 for a release recorded before replicas)."""
        return release_rules.replicas_of(self.store.state().get(which))

    def target(self, replica: int = 0) -> health.Target:
        s = self.spec
        return health.Target(self.container(replica=replica), s["network"], int(s["port"]), s["health_path"],
                             s["domain"])

    def check_edge_servers(self, phase: str) -> None:
        """The edge on this host must route as many servers per colour as the release runs replicas; it learns a
        new count from the services registry when it is provisioned."""
        if self.host.proxy is None or not self.web:
            return
        try:  # this host's own servers: those of app hosts on other hosts are named <container>.<index>
            servers = self.host.proxy.colour_servers(self.name, contract.COLOURS[0])
            routed = len([s for s in servers if not cluster.is_remote_server(s)])
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
        if self.host.proxy is not None and self.web and self.host.proxy.live(self.name) != self.colour:
            with contextlib.suppress(ProxyError):  # the proxy is down or never had the colour: nothing routes there
                self.host.proxy.set_server(self.name, self.colour, "state drain")
        workers.discard(self)
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
        if self.restarts_kept:
            self.start_kept()
            return
        colour, name = self.colour, self.container()
        with self.run.phase("start"):
            state = self.store.state()
            # Never replace what serves: the recorded live colour, or the one the proxy routes while its container
            # runs (a failed switch-back leaves them apart; a fresh edge names a colour with no container yet).
            routed = self.host.proxy.live(self.name) if self.host.proxy is not None and self.web else None
            if colour == (state.get("live") or {}).get("colour") or (
                colour == routed and running(self.docker.inspect(name))
            ):
                raise Failed("start", f"{name} is the live colour; refusing to replace it", contract.EXIT_NEEDS_PERSON)
            self.restore_set_aside(colour)  # a run killed mid-start may have left the rollback target set aside
            kept_here = (state.get("kept") or {}).get("colour") == colour
            self.run.data["start_at"] = self.host.clock.time()
            for replica in range(max(self.replicas, self.recorded_replicas("kept") if kept_here else 0)):
                self.start_replica(replica, kept_here)
            workers.start(self)
            self.prepare_proxy()

    def start_kept(self) -> None:
        """A rollback to the kept release: start its stopped containers (and workers), as they were kept."""
        kept = self.store.state().get("kept") or {}
        with self.run.phase("start"):
            self.check_edge_servers("start")
            names = self.containers()
            for name in names:
                info = self.docker.inspect(name)
                if info is None or info.get("Image") != kept.get("image_id"):
                    raise Failed(
                        "start",
                        f"the kept container {name} ({kept.get('version')}) is gone or runs another image; "
                        "deploy the version you want instead",
                    )
            self.run.data["start_at"] = self.host.clock.time()
            for name in names:
                self.docker.start(name)
            workers.start_kept(self, kept.get("image_id"))
            self.prepare_proxy()

    def start_replica(self, replica: int, kept_here: bool) -> None:
        """One replica's container (past this release's count: only the kept release's container set aside)."""
        spec, colour, name = self.spec, self.colour, self.container(replica=replica)
        c = spec.get("container") or {}
        try:
            ip = addresses.colour(self.docker, spec["network"], self.name, colour, self.host.slots, replica=replica)
            published = publish.bindings(self.host.slots, spec, colour, replica)
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
            box = self.app_box(name)
            box.ip = ip
            box.publish = published
            box.stop_timeout = int(c.get("stop_grace_period", 30))
            box.health_interval = str(c.get("health_interval", health.INTERVAL))
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

    def app_box(self, name: str) -> ContainerSpec:
        """A long-running container of the release (a web replica or a worker): its image, environment and secrets,
        limits, hardening, network, pinned hosts and restart policy; the caller adds its own part."""
        spec = self.spec
        box = prepare.container_spec(spec, name, {**spec["env"], **(spec.get("secret_env") or {})}, True, [])
        box.hosts = addresses.pinned_hosts(self.docker, spec["network"], list(spec.get("pin_hosts") or []))
        box.restart_policy = str((spec.get("container") or {}).get("restart_policy", "unless-stopped"))
        return box

    def prepare_proxy(self) -> None:
        """Have the proxy start fresh checks of the new colour now (best effort: the switch does it otherwise)."""
        try:
            if self.host.proxy is not None and self.web:
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
                        self.host.clock.time(), verdict.checked_at,
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
            if self.web:  # across hosts: where the monitoring host scrapes them once every edge switched
                self.run.data["published"] = publish.targets(self.host.slots, self.spec, self.colour, self.replicas)
            workers.gate(self)
