"""The health gate: the one place that decides whether a new colour may receive traffic.

A colour is healthy when its container runs, its HEALTHCHECK passes (or it has none) and `health_path` answers 200
with the service's Host header at the container's address. Deploy and rollback both pass through here; the proxy's
own checks are the edge's business (proxy.py).

Docker runs a HEALTHCHECK first one interval after the start, then every interval, each run a `docker exec`
(measured here: 0.11 of a core per container at a 1 s interval, 0.06 of it the exec alone). So the colours run at a
slow interval (app_release_health_interval, 10s) and, while Docker still says `starting`, the gate runs the
container's own HEALTHCHECK command itself (check_now: the same command, user and timeout), at most once per
OWN_CHECK_EVERY: a new colour is let through as soon as its check passes, not at Docker's next run. It fails as
soon, by Docker's own rule, when the app is up but unwell: once the check's start period has passed (counted from the
container's start), `retries` failing runs in a row while health_path answers, but not 200, make it unhealthy (a
release whose check fails is refused a few seconds after its start period, not `retries` slow intervals later; one
that answers nothing yet is still booting, and waits for the timeout or Docker's verdict).
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from slipway_core.host.docker import Docker, DockerError, container_ip, health_status, running
from slipway_core.host.system import Clock

# GET (address, port, path, Host, timeout, tls) -> (status or 0, body or the error)
HttpGet = Callable[[str, int, str, str, float, bool], "tuple[int, str]"]
POLL = 0.05  # seconds between two looks at Docker and the app; the first pass ends the wait
INTERVAL = "10s"  # Docker's HEALTHCHECK interval of a colour unless the release says (app_release_health_interval)
OWN_CHECK_EVERY = 1.0  # seconds between two runs of a starting container's HEALTHCHECK by the gate


def http_get(  # noqa: PLR0917 - the HttpGet signature, positional by design
    ip: str, port: int, path: str, host: str, timeout: float = 2.0, tls: bool = False
) -> tuple[int, str]:
    """GET with Host `host`; with tls, over TLS with SNI `host`, the certificate not verified (a check of routing)."""
    conn = http.client.HTTPConnection(ip, port, timeout=timeout)
    try:
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn.sock = context.wrap_socket(socket.create_connection((ip, port), timeout=timeout), server_hostname=host)
        conn.request("GET", path, headers={"Host": host, "Connection": "close", "User-Agent": "slipway-release"})
        resp = conn.getresponse()
        return resp.status, resp.read(4096).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as err:
        return 0, str(err)
    finally:
        conn.close()


@dataclass
class Target:
    """What the gate checks: a container and where its app answers."""

    container: str
    network: str
    port: int
    path: str
    domain: str


@dataclass
class Verdict:
    healthy: bool
    address: str = ""  # where health_path answered (the switch tells the proxy)
    problem: str = ""
    checked_at: float | None = None  # wall time at the end of the gate's own passing run of the HEALTHCHECK


def healthcheck_argv(info: dict[str, Any] | None) -> tuple[list[str], float] | None:
    """The container's HEALTHCHECK as `docker exec` runs it (CMD as is, CMD-SHELL through /bin/sh -c, as Docker
    does) and its timeout in seconds; None without one (none in the image, or NONE)."""
    check = (((info or {}).get("Config") or {}).get("Healthcheck")) or {}
    test = [str(part) for part in check.get("Test") or []]
    timeout = float(check.get("Timeout") or 30e9) / 1e9  # Docker's default: 30 s
    if len(test) >= 2 and test[0] == "CMD":
        return test[1:], timeout
    if len(test) == 2 and test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", test[1]], timeout
    return None


def check_now(docker: Docker, info: dict[str, Any] | None) -> tuple[bool, str] | None:
    """Run the container's HEALTHCHECK now, as Docker would: (passed, its output); None without one."""
    argv = healthcheck_argv(info)
    name = str((info or {}).get("Name") or "").lstrip("/")
    if argv is None or not name:
        return None
    try:
        code, out = docker.exec(name, argv[0], timeout=argv[1], stderr=True)
    except DockerError as err:
        return False, str(err)
    return code == 0, out.strip()


def start_period_ends(info: dict[str, Any] | None, now: float) -> float:
    """Wall time at which the HEALTHCHECK's start period ends (Docker counts no failure before): the container's
    start plus StartPeriod; `now` when Docker does not say when it started."""
    check = (((info or {}).get("Config") or {}).get("Healthcheck")) or {}
    started = docker_time(str(((info or {}).get("State") or {}).get("StartedAt") or ""))
    return (now if started is None else started) + float(check.get("StartPeriod") or 0) / 1e9


def retries(info: dict[str, Any] | None) -> int:
    """Failing HEALTHCHECK runs in a row after the start period that make a container unhealthy (Docker's: 3)."""
    return int((((info or {}).get("Config") or {}).get("Healthcheck") or {}).get("Retries") or 3)


@dataclass
class OwnCheck:
    """The gate's own runs of a starting container's HEALTHCHECK: at most one per OWN_CHECK_EVERY, to let it through
    (the path answers 200) or, while a failing run counts, to refuse it after `retries` in a row."""

    due: float = 0.0  # monotonic time of the next run
    failed: str = ""  # the output of the last failing run, for the message
    streak: int = 0  # failing runs in a row that counted
    period_ends: float | None = None  # wall time the start period ends, read at the first look

    def run(self, docker: Docker, clock: Clock, info: dict[str, Any], code: int) -> Verdict | None:
        """A verdict when this look decides (passed with a 200, or unhealthy by Docker's rule), else None."""
        if self.period_ends is None:
            self.period_ends = start_period_ends(info, clock.time())
        # A failing run counts past the start period (Docker's rule), and only while the app answers the path at all
        # (not 200): one that answers nothing may still be booting, which Docker's first run, an interval after the
        # start, would not see either.
        counts = code != 0 and clock.time() >= self.period_ends
        if not (code == 200 or counts) or clock.monotonic() < self.due:
            return None
        self.due = clock.monotonic() + OWN_CHECK_EVERY
        checked = check_now(docker, info)
        if checked is not None and checked[0] and code == 200:
            return Verdict(True, checked_at=clock.time())
        failed = checked is not None and not checked[0]
        self.streak = self.streak + 1 if failed and counts else 0
        self.failed = (checked[1][:200] or "no output") if checked is not None and failed else ""
        if self.streak >= retries(info):
            name = str(info.get("Name") or "").lstrip("/")
            return Verdict(False, problem=f"{name} is unhealthy (its HEALTHCHECK, run by the gate, failed "
                                          f"{self.streak} times in a row after its start period: {self.failed})")
        return None


def gate(docker: Docker, clock: Clock, http: HttpGet, target: Target, timeout: float) -> Verdict:
    """Wait until `target` is healthy, or say why not within `timeout` seconds (it exited, went unhealthy, or
    never answered 200)."""
    name = target.container
    deadline = clock.monotonic() + timeout
    why = "not checked yet"
    own = OwnCheck(due=clock.monotonic())
    while True:
        info = docker.inspect(name)
        if info is None:
            return Verdict(False, problem=f"{name} disappeared")
        if not running(info):
            state = info.get("State") or {}
            return Verdict(
                False, problem=f"{name} exited (status {state.get('ExitCode')}, {state.get('Error') or 'no error'})"
            )
        status = health_status(info)
        if status == "unhealthy":
            log = ((info.get("State") or {}).get("Health") or {}).get("Log") or [{}]
            return Verdict(
                False, problem=f"{name} is unhealthy (its HEALTHCHECK: {str(log[-1].get('Output', '')).strip()[:300]})"
            )
        ip = container_ip(info, target.network)
        if ip:
            code, body = http(ip, target.port, target.path, target.domain, 2.0, False)
            if code == 200 and status in (None, "healthy"):
                return Verdict(True, address=ip)
            decided = own.run(docker, clock, info, code) if status == "starting" else None
            if decided is not None:
                return Verdict(decided.healthy, address=ip if decided.healthy else "", problem=decided.problem,
                               checked_at=decided.checked_at)
            why = f"GET {target.path} answered {code or 'nothing'} {body.strip()[:200]}; container health {status}"
            why += f"; its HEALTHCHECK run now failed: {own.failed}" if own.failed else ""
        else:
            why = f"{name} has no address on {target.network}"
        if clock.monotonic() >= deadline:
            return Verdict(False, problem=f"{name} was not healthy within {timeout:g}s: {why}")
        clock.sleep(POLL)


DOCKER_TIME_RE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def docker_time(text: str) -> float | None:
    """Seconds since the epoch of a Docker timestamp (RFC 3339 with up to nanoseconds), None if unreadable."""
    match = DOCKER_TIME_RE.fullmatch(text or "")
    if not match:
        return None
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(match.group(1) + zone).timestamp() + float("0." + (match.group(2) or "0"))


def start_to_healthy(
    info: dict[str, Any] | None, started_at: float, now: float, checked_at: float | None = None
) -> float | None:
    """A container's own start-to-healthy time: from `docker run`/`docker start` (started_at) to the end of its
    first passing HEALTHCHECK since then, Docker's or the gate's own (checked_at). With the drain, the rollout's
    floor (bench/)."""
    if health_status(info) != "healthy" and checked_at is None:
        return None
    log = (((info or {}).get("State") or {}).get("Health") or {}).get("Log") or []
    passed = [docker_time(str(entry.get("End", ""))) for entry in log if entry.get("ExitCode") == 0]
    passed.append(checked_at)
    healthy_at = min([t for t in passed if t is not None and t >= started_at] or [now])
    return round(max(0.0, healthy_at - started_at), 2)


STALE_AFTER = 30.0  # seconds without a HEALTHCHECK result (and at least 3 intervals): Docker stopped checking


def stale(info: dict[str, Any] | None, now: float) -> bool:
    """Docker's health status of a running container has not been refreshed for a while: its checks stopped, as
    Docker 20.10 does after the engine restarts with live-restore (moby#41871). Its status then says nothing."""
    if not running(info) or health_status(info) is None:
        return False
    state = (info or {}).get("State") or {}
    log = (state.get("Health") or {}).get("Log") or []
    ends = [t for t in (docker_time(str(entry.get("End", ""))) for entry in log) if t is not None]
    since = max(ends) if ends else docker_time(str(state.get("StartedAt", "")))
    interval = float((((info or {}).get("Config") or {}).get("Healthcheck") or {}).get("Interval") or 0) / 1e9
    return since is not None and now - since > max(3 * interval, STALE_AFTER)
