"""In-memory stand-ins for what the host program talks to: the clock and the Docker engine (the edge and the apps
are in fake_edge.py). No Docker, no network."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slipway_core import contract
from slipway_core.host.docker import ContainerSpec, Docker, DockerError
from slipway_core.host.system import Clock

NETWORK = "slipway"
SUBNET = "172.18.0.0/22"  # contract.network_plan: Docker's pool 172.18.0.0/23, fixed addresses from 172.18.2.0
PROXY_CONTAINER = "edge-proxy"
HEALTHCHECK = ["python", "-m", "notes_api.healthcheck"]  # every image's (the sample's), as `docker exec` runs it
PROXY_IP = "172.18.0.2"


class Crash(BaseException):
    """Raised by a fake to stop the host program where it stands (a kill, a lost connection)."""


# ------------------------------------------------------------------------------------------------------ the clock
class FakeClock(Clock):
    """Time that moves only when the code sleeps; each sleep also counts (the fakes' health follows the count)."""

    def __init__(self) -> None:
        self.now = 1_767_225_600.0  # 2026-01-01T00:00:00Z
        self.mono = 1000.0
        self.sleeps = 0
        self.on_sleep: list[Callable[[], None]] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds
        self.sleeps += 1
        for hook in list(self.on_sleep):
            hook()

    def advance(self, seconds: float) -> None:
        """Time passes without anyone sleeping (another process's idle time)."""
        self.now += seconds
        self.mono += seconds


def docker_time(seconds: float) -> str:
    """A timestamp as Docker writes it: RFC 3339 with nanoseconds."""
    whole = int(seconds)
    nanos = round((seconds - whole) * 1e9)
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


# ------------------------------------------------------------------------------------------------- the engine
@dataclass
class Behaviour:
    """How an image's containers behave."""

    healthy_after: int = 1  # clock sleeps after its start until it answers and Docker calls it healthy
    unhealthy: bool = False  # its HEALTHCHECK fails (Docker: unhealthy)
    exits: bool = False  # exits at once after starting
    answers: bool = True  # GET answers 200 once up (False: never)
    version: str | None = None  # what it says it is (default: its tag)
    migrate_exit: int = 0  # exit code of its migrate command
    migrate_to: str = ""  # the schema revision its migrate command leaves (also when it fails)
    healthcheck: bool = True  # the image has a HEALTHCHECK
    worker_exits: bool = False  # its worker containers (label slipway.worker) exit 1 at once after starting
    worker_health_exit: int = 0  # exit code of a worker's health_command (docker exec)
    docker_checks_after: int = 0  # clock sleeps after its start before Docker's first HEALTHCHECK run (its interval)
    healthcheck_fails: bool = False  # its HEALTHCHECK fails although GET health_path answers (it checks more)
    start_period: float = 0.0  # its HEALTHCHECK's start period, seconds (no failing run counts before)
    path_status: int = 200  # what GET health_path answers once up (503: up, and says it is unwell)


@dataclass
class Box:
    """One container of the fake engine."""

    name: str
    ref: str
    image_id: str
    behaviour: Behaviour
    labels: dict[str, str]
    env: dict[str, str]
    ip: str
    running: bool = False
    exit_code: int = 0
    started_sleeps: int = 0
    started_at: float = 0.0
    fixed: bool = False  # the address is configured (docker run --ip), not Docker's choice


def image_version(ref: str) -> str:
    return ref.rsplit(":", 1)[-1]


class FakeDocker(Docker):
    """The engine in memory: containers by name, images by reference; every change is recorded in `calls`."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(socket_path="", cli="docker-is-not-used-by-the-fake")
        self.clock = clock
        self.boxes: dict[str, Box] = {}
        self.images: dict[str, str] = {}  # on the host: ref -> id
        self.registry: dict[str, str] = {}  # pullable: ref -> id
        self.private: dict[str, tuple[str, str]] = {}  # ref -> the (username, password) its registry wants
        self.manifest_sizes: dict[str, int] = {}  # ref -> compressed bytes its registry's manifest lists
        self.session = ("", "")  # the (username, password) of the registry_login in progress
        self.archives: dict[str, str] = {}  # archive path -> the ref it holds
        self.behaviours: dict[str, Behaviour] = {}  # by image ref
        self.calls: list[tuple[str, ...]] = []
        self.runs: list[ContainerSpec] = []
        self.revision = ""  # alembic_version in the database ('' when no table)
        self.revision_reachable = True  # `alembic current` reaches the database (across hosts)
        self.alembic_history: tuple[int, str] = (0, "")  # what `alembic history -r A:B` answers (exit, output)
        self.outputs: dict[str, str] = {}  # a one-off container's output, by name
        self.command_answer = subprocess.CompletedProcess[str]([], 0, "", "")
        self.kill_hooks: list[Callable[[str, str], None]] = []
        self.before: Callable[[str, tuple[str, ...]], None] | None = None  # e.g. to Crash at a moment
        self.lock = threading.RLock()
        self.next_ip = 10
        self.stop_graces: dict[str, float] = {}  # the grace of each container's last docker stop
        self.add_proxy()

    # ---------------------------------------------------------------------------------------------- set-up
    def add_proxy(self) -> None:
        box = Box(PROXY_CONTAINER, "haproxy:3.0", "sha256:haproxy", Behaviour(), {}, {}, PROXY_IP, running=True)
        self.boxes[PROXY_CONTAINER] = box

    def add_postgres(self) -> None:
        address = contract.network_plan(SUBNET)["infra"]["postgres"]
        self.boxes["postgres"] = Box("postgres", "postgres:16", "sha256:postgres", Behaviour(), {}, {}, address,
                                     running=True, fixed=True)

    def add_image(self, ref: str, behaviour: Behaviour | None = None, *, on_host: bool = True) -> str:
        """An image in the registry (and on the host unless on_host=False); returns its id."""
        ident = "sha256:" + hashlib.sha256(ref.encode()).hexdigest()
        self.registry[ref] = ident
        if on_host:
            self.images[ref] = ident
        self.behaviours[ref] = behaviour or Behaviour()
        return ident

    def _note(self, what: str, *args: str) -> None:
        self.calls.append((what, *args))
        if self.before is not None:
            self.before(what, args)

    def app_up(self, box: Box) -> bool:
        """The app answers: running, and booted (healthy_after sleeps since its start)."""
        booted = self.clock.sleeps - box.started_sleeps >= box.behaviour.healthy_after
        return box.running and box.behaviour.answers and not box.behaviour.unhealthy and booted

    def health(self, box: Box) -> dict[str, Any] | None:
        b = box.behaviour
        if not b.healthcheck or "slipway.worker" in box.labels:  # a worker runs with --no-healthcheck
            return None
        checked = self.clock.sleeps - box.started_sleeps >= b.docker_checks_after
        if b.unhealthy or (b.healthcheck_fails and checked):
            log = [{"ExitCode": 1, "Output": "curl: (7) connection refused\n", "End": docker_time(box.started_at + 1)}]
            return {"Status": "unhealthy", "FailingStreak": 3, "Log": log}
        if self.clock.sleeps - box.started_sleeps >= max(b.healthy_after, b.docker_checks_after):
            end = box.started_at + 0.05 * max(b.healthy_after, b.docker_checks_after)
            return {"Status": "healthy", "Log": [{"ExitCode": 0, "Output": "ok", "End": docker_time(end)}]}
        return {"Status": "starting", "Log": []}

    def box_at(self, ip: str) -> Box | None:
        with self.lock:
            # A stopped colour keeps its fixed address in its configuration; the running one holds it.
            at = [box for box in self.boxes.values() if box.ip == ip]
            return next((box for box in at if box.running), at[0] if at else None)

    def answer_version(self, box: Box) -> str:
        return box.behaviour.version or image_version(box.ref)

    # ----------------------------------------------------------------------------------------------- reads
    def inspect(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            box = self.boxes.get(name)
            if box is None:
                return None
            state: dict[str, Any] = {"Running": box.running, "ExitCode": box.exit_code, "Error": "",
                                     "StartedAt": docker_time(box.started_at)}
            health = self.health(box)
            if health is not None:
                state["Health"] = health
            config: dict[str, Any] = {"Image": box.ref, "Labels": dict(box.labels),
                                      "Env": [f"{k}={v}" for k, v in sorted(box.env.items())]}
            if health is not None:  # the image's HEALTHCHECK, as Docker merges it into the container's
                config["Healthcheck"] = {"Test": ["CMD", *HEALTHCHECK], "Interval": int(10e9), "Timeout": int(3e9),
                                         "StartPeriod": int(box.behaviour.start_period * 1e9), "Retries": 3}
            return {
                "Name": f"/{name}",
                "Image": box.image_id,
                "State": state,
                "Config": config,
                "NetworkSettings": {"Networks": {NETWORK: {
                    "IPAddress": box.ip if box.running else "",
                    "IPAMConfig": {"IPv4Address": box.ip} if box.fixed else None,
                }}},
            }

    def network(self, name: str) -> dict[str, Any] | None:
        plan = contract.network_plan(SUBNET)
        config = {"Subnet": SUBNET, "Gateway": plan["gateway"], "IPRange": plan["ip_range"]}
        return {"Name": name, "IPAM": {"Config": [config]}} if name == NETWORK else None

    def image_id(self, ref: str) -> str | None:
        """By reference, or by id (`docker image inspect sha256:...` answers for an image on the host too)."""
        return self.images.get(ref) or (ref if ref in self.images.values() else None)

    # --------------------------------------------------------------------------------------------- changes
    def command(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        stdin: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        self._note("command", *args)
        answer = self.command_answer
        if check and answer.returncode:
            raise DockerError(f"`docker {' '.join(args[:3])}` failed: {answer.stderr}")
        return subprocess.CompletedProcess(["docker", *args], answer.returncode, answer.stdout, answer.stderr)

    def run(self, spec: ContainerSpec, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        self._note("run", spec.name, spec.image)
        with self.lock:
            self.runs.append(spec)
            if spec.name in self.boxes:
                raise DockerError(f"`docker run` failed: the container name {spec.name} is already in use")
            if spec.image not in self.images:
                raise DockerError(f"`docker run` failed: no such image {spec.image}")
            taken = [b.name for b in self.boxes.values() if b.running and spec.ip and b.ip == spec.ip]
            if taken:
                raise DockerError(f"`docker run` failed: Address already in use ({spec.ip}, {taken[0]})")
            behaviour = self.behaviours.get(spec.image, Behaviour())
            self.next_ip += 1
            box = Box(spec.name, spec.image, self.images[spec.image], behaviour, dict(spec.labels), dict(spec.env),
                      spec.ip or f"172.18.0.{self.next_ip}", fixed=bool(spec.ip))
            self.boxes[spec.name] = box
        if not spec.detach and spec.command[:2] == ["alembic", "current"]:  # over the network, across hosts
            box.exit_code = 0 if self.revision_reachable else 1
            self.outputs[spec.name] = ("INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.\n"
                                       + (f"{self.revision} (head)\n" if self.revision else "")
                                       if self.revision_reachable else "connection refused")
            return subprocess.CompletedProcess(["docker", *spec.argv()], box.exit_code, "", "")
        if not spec.detach and spec.command[:2] == ["alembic", "history"]:  # a question to the migration tool
            box.exit_code, self.outputs[spec.name] = self.alembic_history
            return subprocess.CompletedProcess(["docker", *spec.argv()], box.exit_code, "", "")
        if not spec.detach:  # a one-off command (the migration): it ran and ended
            box.exit_code = behaviour.migrate_exit
            if behaviour.migrate_to:
                self.revision = behaviour.migrate_to
            return subprocess.CompletedProcess(["docker", *spec.argv()], behaviour.migrate_exit, "", "")
        self._boot(box)
        return subprocess.CompletedProcess(["docker", *spec.argv()], 0, "0123abcd\n", "")

    def _boot(self, box: Box) -> None:
        exits = box.behaviour.exits or (box.behaviour.worker_exits and "slipway.worker" in box.labels)
        box.running = not exits
        box.exit_code = 1 if exits else 0
        box.started_sleeps = self.clock.sleeps
        box.started_at = self.clock.time()

    def start(self, name: str) -> None:
        self._note("start", name)
        if name not in self.boxes:
            raise DockerError(f"`docker start {name}` failed: no such container")
        self._boot(self.boxes[name])

    def stop(self, name: str, grace: float) -> None:
        self._note("stop", name)
        self.stop_graces[name] = grace
        box = self.boxes.get(name)
        if box is not None:
            box.running, box.exit_code = False, 0

    def remove(self, name: str) -> None:
        self._note("remove", name)
        with self.lock:
            self.boxes.pop(name, None)

    def tags(self, repository: str) -> dict[str, str]:
        with self.lock:
            return {ref: ident for ref, ident in self.images.items() if ref.rpartition(":")[0] == repository}

    def remove_image(self, ref: str) -> bool:
        self._note("rmi", ref)
        with self.lock:
            ident = self.images.get(ref)
            if ident is None:
                return False
            in_use = any(box.image_id == ident for box in self.boxes.values())
            if in_use and list(self.images.values()).count(ident) == 1:
                return False  # docker rmi: the image is used by a container (its last tag stays)
            del self.images[ref]
            return True

    def containers(self, service: str) -> dict[str, bool]:
        with self.lock:
            return {b.name: b.running for b in self.boxes.values() if b.labels.get("slipway.service") == service}

    def prune_dangling(self) -> None:
        self._note("image-prune")

    def rename(self, old: str, new: str) -> None:
        self._note("rename", old, new)
        with self.lock:
            if old not in self.boxes or new in self.boxes:
                raise DockerError(f"`docker rename {old} {new}` failed")
            box = self.boxes.pop(old)
            box.name = new
            self.boxes[new] = box

    def logs(self, name: str, lines: int) -> str:
        if name in self.outputs:
            return self.outputs[name]
        box = self.boxes.get(name)
        return f"{name} booting\n{name} giving up" if box else ""

    def exec(
        self, container: str, argv: list[str], user: str = "", timeout: float = 20, *, stderr: bool = False
    ) -> tuple[int, str]:
        self._note("exec", container, *argv)
        box = self.boxes.get(container)
        if box is not None and "slipway.worker" in box.labels:  # a worker's health_command
            return (box.behaviour.worker_health_exit, "") if box.running else (1, "container is not running")
        if box is not None and argv == HEALTHCHECK:  # the image's HEALTHCHECK, run by the gate (health.check_now)
            if not box.running:
                return 1, "container is not running"
            if box.behaviour.healthcheck_fails:
                return 1, "the queue is not reachable"
            return (0, "ok") if self.app_up(box) else (1, "connection refused")
        if container not in self.boxes or argv[0] != "psql":
            return 1, ""
        return (0, self.revision + "\n") if self.revision else (1, "")

    def kill(self, container: str, signal: str) -> None:
        self._note("kill", container, signal)
        if container not in self.boxes:
            raise DockerError(f"`docker kill {container}` failed: no such container")
        for hook in self.kill_hooks:
            hook(container, signal)

    def load(self, archive: str) -> None:
        self._note("load", archive)
        ref = self.archives.get(archive)
        if ref is None:
            raise DockerError(f"`docker load` failed: {archive} is not an image archive")
        self.images[ref] = self.registry[ref]

    @contextlib.contextmanager
    def registry_login(self, ref: str, username: str = "", password: str = "") -> Iterator[dict[str, str] | None]:
        self.session = (username, password) if username and password else ("", "")
        try:
            yield {"DOCKER_CONFIG": "/fake"} if username and password else None
        finally:
            self.session = ("", "")

    def pull_size(self, ref: str, env: dict[str, str] | None) -> tuple[int, str]:
        self._note("manifest", ref)
        size = self.manifest_sizes.get(ref, 0)
        return (size, "") if size else (0, "the fake registry has no manifest for it")

    def pull(self, ref: str, env: dict[str, str] | None = None) -> None:
        username, password = self.session
        self._note("pull", ref, username)
        wanted = self.private.get(ref)
        if ref not in self.registry or (wanted is not None and wanted != (username, password)):
            raise DockerError(f"docker pull {ref} failed: pull access denied")
        self.images[ref] = self.registry[ref]

    # ------------------------------------------------------------------------------------------- questions
    def names(self) -> set[str]:
        return set(self.boxes) - {PROXY_CONTAINER, "postgres"}

    def changes(self) -> list[tuple[str, ...]]:
        """The calls that change something (what check mode must not make)."""
        return [c for c in self.calls if c[0] not in ("exec", "manifest")]
