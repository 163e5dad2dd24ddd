"""The edge proxy: HAProxy's runtime API (a Unix socket in a host directory, never on a network).

`switch_over` is the one call a rollout makes to the edge: make the new colour live once HAProxy's own checks pass,
persist it (a restart keeps it), confirm through the proxy that the new version answers (else switch back), and
wait until the old colour has no session left. The settings file is written by the edge_proxy role.
Documented in docs/edge-proxy.md.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import socket
from dataclasses import dataclass
from typing import IO, Any, Sequence

from slipway_core import contract, release_rules
from slipway_core.host.docker import Docker, DockerError
from slipway_core.host.health import HttpGet
from slipway_core.host.system import Clock, wait_for, write_text

SETTINGS_PATH = "/etc/slipway/edge-proxy/slipway-proxy.json"
# srv_admin_state bits (HAProxy's server state file format).
ADMIN_FLAGS = {
    0x01: "forced-maint",
    0x02: "inherited-maint",
    0x04: "config-maint",
    0x08: "forced-drain",
    0x10: "inherited-drain",
    0x20: "resolution-maint",
    0x40: "fqdn-changed",
    0x80: "hostname-maint",
}
DRAIN_BITS = 0x08 | 0x10  # forced-drain, inherited-drain


class ProxyError(Exception):
    """code 1: the proxy refused or a wait timed out; 2: unknown service; 3: the proxy cannot be reached, or a
    switch back failed (a person must look)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def load_settings(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data: dict[str, Any] = json.load(handle)
    except (OSError, ValueError) as err:
        raise ProxyError(f"cannot read {path} ({err}); is the edge_proxy role applied?", 3) from err
    return data


@dataclass
class Confirm:
    """After the switch, `path` through the proxy (Host `domain`) must answer 200 and name `version`."""

    version: str
    path: str = ""  # empty: the service's health_path, and any 200 will do
    tls: bool = False
    port: int = 80
    attempts: int = 25


class Proxy:
    def __init__(self, settings: dict[str, Any], docker: Docker, clock: Clock, http: HttpGet) -> None:
        self.settings = settings
        self.docker = docker
        self.clock = clock
        self.http = http

    # ----------------------------------------------------------------------------------------- runtime API
    def runtime(self, command: str, sock: str = "admin_socket") -> str:
        """Send one command to the runtime API (or the master CLI) and return its answer."""
        path = self.settings[sock]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(10)
                conn.connect(path)
                # The master CLI keeps the connection open after a command unless told to quit.
                conn.sendall(command.encode() + (b"; quit" if sock == "master_socket" else b"") + b"\n")
                chunks = []
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
        except OSError as err:
            raise ProxyError(f"cannot reach the runtime API at {path}: {err}", 3) from err
        return b"".join(chunks).decode()

    def service(self, name: str) -> dict[str, Any]:
        services: dict[str, dict[str, Any]] = self.settings["services"]
        if name not in services:
            raise ProxyError(f"unknown service {name!r}; the proxy routes: {', '.join(sorted(services)) or 'none'}", 2)
        return services[name]

    def backend(self, name: str) -> str:
        return str(self.service(name).get("backend") or contract.backend_name(name))

    def colour_servers(self, name: str, colour: str) -> list[str]:
        """The servers of one colour, one per replica (settings written before replicas name only the first)."""
        names = (self.service(name).get("servers") or {}).get(colour)
        return [str(n) for n in names] if names else [contract.container_name(name, colour)]

    def servers(self, name: str) -> dict[str, dict[str, Any]]:
        """The two colours of a service as HAProxy sees them right now: each colour's servers (`members`, one per
        replica) and their sum (UP or ready only when every member is; sessions added up)."""
        backend = self.backend(name)
        stat = self.runtime(f"show stat {backend} 4 -1")
        if not stat.startswith("# "):
            raise ProxyError(f"the proxy has no backend {backend}: {stat.strip()}")
        rows = {row["svname"]: row for row in csv.DictReader(io.StringIO(stat[2:]))}
        states: dict[str, list[str]] = {}
        for line in self.runtime(f"show servers state {backend}").splitlines()[2:]:
            words = line.split()
            if len(words) > 6:
                states[words[3]] = words
        out = {}
        for colour in contract.COLOURS:
            members = []
            for server in self.colour_servers(name, colour):
                row, words = rows.get(server, {}), states.get(server, [])
                admin = int(words[6]) if words else 0
                status, check = row.get("status", "unknown"), row.get("check_status", "")
                members.append({
                    "server": server,
                    "status": status,  # HAProxy's view: UP (serving), DRAIN, MAINT, DOWN, ...
                    "admin": admin_state(admin, status),
                    "admin_flags": [label for bit, label in ADMIN_FLAGS.items() if admin & bit],
                    "address": words[4] if words else None,
                    "port": int(words[18]) if len(words) > 18 and words[18].isdigit() else None,
                    "check": check,
                    "serving": serving(status, check),
                    "sessions": int(row.get("scur") or 0),
                    "total_sessions": int(row.get("stot") or 0),
                })
            out[colour] = summary(members)
        return out

    def set_server(self, name: str, colour: str, setting: str, only: str = "") -> None:
        """`set server <backend>/<server> <setting>` for every server of `colour` (or `only` that one); HAProxy
        answers nothing when it agrees."""
        for server in [only] if only else self.colour_servers(name, colour):
            target = f"{self.backend(name)}/{server}"
            answer = self.runtime(f"set server {target} {setting}").strip()
            if answer:
                raise ProxyError(f"the proxy refused 'set server {target} {setting}': {answer}")

    # ---------------------------------------------------------------------------------------- live colour
    def live_file(self, name: str) -> str:
        return os.path.join(self.settings["live_dir"], f"{name}.cfg")

    def live(self, name: str) -> str | None:
        """The persisted live colour (what HAProxy loads on a reload or restart)."""
        self.service(name)
        try:
            with open(self.live_file(name), encoding="utf-8") as handle:
                for line in handle:
                    words = line.split()
                    if len(words) == 3 and words[0] == "setenv" and words[2] in contract.COLOURS:
                        return words[2]
        except FileNotFoundError:
            return None
        return None

    def persist(self, name: str, colour: str) -> None:
        """The live colour, and each of its replicas past the first, as the configuration reads them on a reload."""
        count = len(self.colour_servers(name, colour))
        replicas = "".join(f"    setenv {release_rules.replica_env_var(name, r)} 1\n" for r in range(1, count))
        content = (
            f"# Live colour of {name}, written by slipway-proxy or the edge_proxy role.\n"
            f"global\n    setenv {contract.live_env_var(name)} {colour}\n{replicas}"
        )
        write_text(self.live_file(name), content, 0o644)

    def status(self, name: str) -> dict[str, Any]:
        servers = self.servers(name)
        return {
            "service": name,
            "backend": self.backend(name),
            "live": self.live(name),
            "serving": [c for c in contract.COLOURS if servers[c]["serving"]],
            "servers": servers,
        }

    # ------------------------------------------------------------------------------------------- switching
    def restart_checks(self, name: str, colour: str) -> None:
        """Out of rotation, health forgotten: only `rise` fresh checks make `colour` healthy again (drained: checked
        but no traffic; marked down)."""
        self.set_server(name, colour, "state drain")
        self.set_server(name, colour, "health down")

    def prepare(self, name: str, colour: str) -> None:
        """Start fresh checks of a colour whose container just started, so they pass during the health gate."""
        with _SwitchLock(self.settings, name):
            if self.live(name) == colour:
                raise ProxyError(
                    f"{contract.container_name(name, colour)} is the live colour; refusing to take it out of rotation"
                )
            self.restart_checks(name, colour)

    def switch(
        self, name: str, colour: str, timeout: float, prepared: bool = False, verified: Sequence[str] = ()
    ) -> None:
        """Make `colour` live: ready its servers once their checks pass, persist it, then drain the other.

        prepared: `prepare` ran since its containers started, so their checks are fresh. verified: addresses where
        the caller's health gate passed just now; a server the proxy routes to one of them is marked up at once
        instead of waiting for checks that may still count a failure from the boot. Any other server is asked here
        as HAProxy's check asks it (GET health_path with the service's Host, at its address and port) and marked up
        when it answers 200: an edge whose servers are on other hosts, gated there, does not wait `rise` checks
        (1.95 s measured on the demo cluster's edge; HAProxy goes on checking it, as any server)."""
        other = contract.other_colour(colour)
        server, other_server = contract.container_name(name, colour), contract.container_name(name, other)
        with _SwitchLock(self.settings, name):
            before = self.servers(name)[colour]
            if before["admin"] != "ready" or prepared:
                if not (prepared and "forced-drain" in before["admin_flags"]):
                    self.restart_checks(name, colour)
                for member in before["members"]:
                    if member["address"] in verified or self.answers_check(name, member):
                        self.set_server(name, colour, "health up", only=member["server"])
                if not wait_for(self.clock, lambda: self.servers(name)[colour]["status"] == "DRAIN", timeout):
                    now = self.servers(name)[colour]  # as the checks left it, before its admin state is put back
                    self.set_server(name, colour, "state maint" if before["admin"] == "maint" else "state drain")
                    raise ProxyError(
                        f"{describe(now, server)} did not pass its health checks within {timeout:g}s (status "
                        f"{now['status']}, check {now['check']}, address {now['address']}); "
                        f"{other_server} stays live"
                    )
            self.set_server(name, colour, "state ready")
            # Serving, not any UP: "UP 2/3" is a server one failed check from DOWN; "UP 1/3" with check INI one HAProxy
            # has not checked since its start or reload (a colour already `ready` comes here without a check).
            if not wait_for(self.clock, lambda: self.servers(name)[colour]["serving"], timeout):
                now = self.servers(name)[colour]
                self.set_server(name, colour, "state drain")
                raise ProxyError(
                    f"{server} was not serving once made live (status {now['status']}, check {now['check']}); "
                    f"{other_server} stays live"
                )
            self.persist(name, colour)
            self.set_server(name, other, "state drain")

    def answers_check(self, name: str, member: dict[str, Any]) -> bool:
        """The server answers HAProxy's health check now: GET health_path, Host domain, at its address and port."""
        address, port = member.get("address"), member.get("port")
        if not address or address == "0.0.0.0" or not port:  # noqa: S104 - HAProxy's "no address"
            return False
        service = self.service(name)
        code, _ = self.http(str(address), int(port), str(service.get("health_path") or "/health"),
                            str(service.get("domain") or ""), 2.0, False)
        return code == 200

    def address(self) -> str:
        """Where the switch is confirmed: the settings' `address` for an edge on the host's network (its listening
        address), else the proxy container's address."""
        if self.settings.get("address"):
            return str(self.settings["address"])
        info = self.docker.inspect(self.settings["container"])
        networks = ((info or {}).get("NetworkSettings") or {}).get("Networks") or {}
        for net in networks.values():
            if (net or {}).get("IPAddress"):
                return str(net["IPAddress"])
        raise ProxyError(f"the edge proxy container {self.settings['container']} is not running", 3)

    def confirm(self, name: str, check: Confirm) -> str | None:
        """None when `check.path` through the proxy answers 200 (naming the version) on 3 new connections in a
        row, within `check.attempts` tries; else what it answered."""
        ip, domain = self.address(), self.service(name)["domain"]
        https = int(self.settings.get("https_port", 443))
        path = check.path or self.service(name)["health_path"]
        why = ""
        for _ in range(check.attempts):
            ok = 0
            for _ in range(3):
                code, body = self.http(ip, https if check.tls else check.port, path, domain, 2.0, check.tls)
                if code == 200 and (not check.path or names_version(body, check.version)):
                    ok += 1
                    continue
                why = f"GET {path} (Host {domain}) through the proxy answered {code or 'nothing'}: {body.strip()[:200]}"
                break
            if ok == 3:
                return None
            self.clock.sleep(0.2)
        return why

    def wait_drained(self, name: str, colour: str, timeout: float) -> int:
        """Sessions left on `colour` after waiting up to `timeout` seconds for none (0: drained)."""
        wait_for(self.clock, lambda: self.servers(name)[colour]["sessions"] == 0, timeout, interval=0.1)
        return int(self.servers(name)[colour]["sessions"])

    def switch_over(
        self,
        name: str,
        colour: str,
        check: Confirm,
        timeout: float,
        drain_timeout: float,
        *,
        prepared: bool = False,
        verified: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The rollout's one call to the edge: switch, confirm (switch back on failure), drain the old colour.
        Returns the seconds of the switch and of the drain, and the sessions left on the old colour."""
        started = self.clock.monotonic()
        previous = self.live(name)
        self.switch(name, colour, timeout, prepared, verified)
        problem = self.confirm(name, check)
        if problem:
            if previous and previous != colour:
                try:
                    self.switch(name, previous, 30)
                except ProxyError as err:
                    raise ProxyError(f"{problem}; switching back to {previous} FAILED too: {err}", 3) from err
            raise ProxyError(f"{problem}; switched back to {previous}")
        switched = self.clock.monotonic()
        left = self.wait_drained(name, contract.other_colour(colour), drain_timeout) if previous else 0
        return {
            "switch": round(switched - started, 2),
            "drain": round(self.clock.monotonic() - switched, 2),
            "sessions_left": left,
        }

    # ---------------------------------------------------------------------------------------- configuration
    def check_config(self) -> None:
        proc = self.docker.command("exec", self.settings["container"], *self.settings["check_command"], check=False)
        if proc.returncode != 0:
            raise ProxyError("the proxy configuration is invalid, not reloading:\n" + proc.stdout + proc.stderr)

    def workers(self) -> set[str]:
        answer = self.runtime("show proc", sock="master_socket")
        return {
            words[0]
            for words in (line.split() for line in answer.splitlines())
            if len(words) > 2 and words[1] == "worker"
        }

    def reload(self, timeout: float) -> dict[str, Any]:
        """Check the configuration, then reload seamlessly (listeners handed over, no connection dropped)."""
        self.check_config()
        before = self.workers()
        try:
            self.docker.kill(self.settings["container"], "USR2")
        except DockerError as err:
            raise ProxyError(str(err), 3) from err

        def new_worker() -> bool:
            try:
                return bool(self.workers() - before)
            except ProxyError:  # the master re-executes itself: its socket is briefly gone
                return False

        if not wait_for(self.clock, new_worker, timeout, interval=0.2):
            raise ProxyError(
                f"no new worker started within {timeout:g}s; see `docker logs {self.settings['container']}`"
            )
        return {"reloaded": True, "old_workers": sorted(before), "workers": sorted(self.workers() - before)}


def admin_state(bits: int, status: str) -> str:
    """maint, drain or ready. Maintenance from the status, which says MAINT whatever the checks; a drain from the
    drain bits (`show servers state`), which keep it when the checks fail (a drained server that is DOWN reads
    status DOWN, not DRAIN). Not the maintenance bits: HAProxy 2.6 keeps config-maint (a server `disabled` in the
    config) after `set server state ready` or `drain` put it in service."""
    if status.startswith("MAINT"):
        return "maint"
    return "drain" if bits & DRAIN_BITS or status == "DRAIN" else "ready"


def serving(status: str, check: str) -> bool:
    """HAProxy routes to the server and its checks vouch for it: UP at full health (not "UP 1/3", HAProxy's "up,
    going down", which is also every server's state from a start or reload until its first check, measured on
    HAProxy 2.6: an address with no container reads "UP 1/3", check "* INI", for the ~2 s its first check takes)
    and checked at least once (with `fall 1` full health is the start's health too)."""
    return status == "UP" and check.removeprefix("* ") != "INI"


def summary(members: list[dict[str, Any]]) -> dict[str, Any]:
    """One colour from its servers: its status, admin state and check are the first member's that is not UP, ready
    or passing (so UP only when all are), its sessions their sum, serving when all are; `server` and `address` are
    the first member's."""
    first = members[0]
    status = next((m["status"] for m in members if m["status"] != "UP"), first["status"])
    return {
        **first,
        "status": status,
        "serving": all(m["serving"] for m in members),
        "admin": next((m["admin"] for m in members if m["admin"] != "ready"), "ready"),
        "admin_flags": sorted({flag for m in members for flag in m["admin_flags"]}),
        "check": next((m["check"] for m in members if not str(m["check"]).startswith("L7OK")), first["check"]),
        "sessions": sum(m["sessions"] for m in members),
        "total_sessions": sum(m["total_sessions"] for m in members),
        "members": members,
    }


def describe(colour: dict[str, Any], first: str) -> str:
    """A colour's servers for a message: the first's name, and how many replicas when more than one."""
    count = len(colour.get("members") or [])
    return first if count <= 1 else f"{first} (and its {count - 1} other replica(s))"


def names_version(body: str, version: str) -> bool:
    """A JSON body with a "version" must equal it (v2.0.0 is not v2.0.0-slow); any other body must contain it."""
    try:
        data = json.loads(body)
    except ValueError:
        return version in body
    if isinstance(data, dict) and "version" in data:
        return bool(data["version"] == version)
    return version in body


class _SwitchLock:
    """One switch at a time per service (the rollout holds its own deploy lock too)."""

    def __init__(self, settings: dict[str, Any], name: str) -> None:
        self.path = os.path.join(settings["live_dir"], f".{name}.lock")
        self.handle: IO[str] | None = None

    def __enter__(self) -> _SwitchLock:
        self.handle = open(self.path, "w", encoding="utf-8")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
