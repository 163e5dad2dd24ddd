"""The edge and the apps, faked: HAProxy's runtime API and master CLI on real Unix sockets (served from threads),
and health.HttpGet answering per container address or through the proxy. They read the fake engine's state."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakes import PROXY_IP, FakeClock, FakeDocker

from slipway_core import contract


# -------------------------------------------------------------------------------------------------- the edge
@dataclass
class Server:
    admin: str = "ready"  # ready, drain, maint
    forced: tuple[bool, int] | None = None  # 'health up/down': (up, at clock.sleeps) until the next check
    sessions: int = 0
    total: int = 0
    # From a start or reload until its first check HAProxy reads "UP 1/3", check "* INI", whatever is behind it;
    # one failed check after full health reads "UP 2/3" (up, going down). None: the state the checks give.
    read_as: tuple[str, str] | None = None
    # `disabled` in the config: HAProxy 2.6 keeps its config-maint admin bit (0x04) in `show servers state` after
    # `set server state ready` or `drain` put it in service (measured in the edge_proxy scenario, 2026-12-06).
    config_maint: bool = False


STAT_COLUMNS = [  # the columns of HAProxy's CSV, in its order
    "pxname", "svname", "qcur", "qmax", "scur", "smax", "slim", "stot", "bin", "bout", "dreq", "dresp", "ereq",
    "econ", "eresp", "wretr", "wredis", "status", "weight", "act", "bck", "chkfail", "chkdown", "lastchg",
    "downtime", "qlimit", "pid", "iid", "sid", "throttle", "lbtot", "tracked", "type", "rate", "rate_lim",
    "rate_max", "check_status",
]


class FakeHAProxy:
    """HAProxy's runtime API and master CLI on two Unix sockets, answering as HAProxy prints. A server is UP when
    its container runs and its app answers (the fake engine), DOWN otherwise; 'health down' forces it DOWN (and
    'health up' UP) until the next check, which comes with the clock's next sleep."""

    def __init__(self, settings: dict[str, Any], docker: FakeDocker, clock: FakeClock) -> None:
        self.settings, self.docker, self.clock = settings, docker, clock
        self.servers: dict[tuple[str, str], Server] = {}
        for name, service in settings["services"].items():
            for colour in contract.COLOURS:
                admin = "ready" if colour == "blue" else "maint"  # the config: green is `disabled`
                names = (service.get("servers") or {}).get(colour) or [contract.container_name(name, colour)]
                for replica, server in enumerate(names):
                    # Past the first, a replica serves after a reload only while the live file says so: none yet.
                    state = admin if replica == 0 else "maint"
                    self.servers[(service["backend"], server)] = Server(state, config_maint=state == "maint")
        self.commands: list[str] = []
        self.balanced = 0  # requests routed so far (round robin over the UP servers)
        self.refuse: dict[str, str] = {}  # command -> the answer refusing it
        self.on_command: Callable[[str], None] | None = None  # called with each command, before its answer
        self.unreachable: set[str] = set()  # servers its checks cannot reach (and whose address it lacks)
        self.workers = ["101"]
        self.master_up = True
        self.lock = threading.Lock()
        self._servers: list[socketserver.UnixStreamServer] = []
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------------------------------------ state
    def op_up(self, server: str, state: Server) -> bool:
        if state.forced is not None:
            up, at = state.forced
            if self.clock.sleeps <= at:
                return up
            state.forced = None
        if server in self.unreachable:
            return False
        box = self.docker.boxes.get(server)
        return box is not None and self.docker.app_up(box)

    def status(self, server: str, state: Server) -> str:
        up = self.op_up(server, state)
        if state.read_as is not None and state.admin == "ready":
            return state.read_as[0]
        if state.admin == "maint":
            return "MAINT"
        if not up:
            return "DOWN"
        return "DRAIN" if state.admin == "drain" else "UP"

    def routed(self, backend: str) -> list[str]:
        """Servers that take new traffic now (UP, not drained)."""
        return sorted(srv for (be, srv), st in self.servers.items() if be == backend and self.status(srv, st) == "UP")

    def address(self, server: str) -> str:
        box = self.docker.boxes.get(server)
        reachable = box is not None and box.running and server not in self.unreachable
        return box.ip if box is not None and reachable else "0.0.0.0"  # noqa: S104 - HAProxy's "no address"

    # ------------------------------------------------------------------------------------------ the commands
    def answer(self, line: str) -> str:
        line = line.strip()
        with self.lock:
            self.commands.append(line)
            if self.on_command is not None:
                self.on_command(line)
            if line in self.refuse:
                return self.refuse[line] + "\n"
            words = line.split()
            if words[:2] == ["show", "stat"] and len(words) == 5:
                return self.show_stat(words[2])
            if words[:3] == ["show", "servers", "state"] and len(words) == 4:
                return self.show_state(words[3])
            if words[:2] == ["set", "server"] and len(words) == 5:
                return self.set_server(words[2], words[3], words[4])
            return "Unknown command. Please enter one of the following commands only :\n  help\n"

    def show_stat(self, backend: str) -> str:
        rows = [(srv, st) for (be, srv), st in self.servers.items() if be == backend]
        if not rows:
            return "Can't find backend.\n"
        lines = ["# " + ",".join(STAT_COLUMNS) + ","]
        for srv, st in rows:
            values = dict.fromkeys(STAT_COLUMNS, "")
            up = self.op_up(srv, st)
            values.update({"pxname": backend, "svname": srv, "scur": str(st.sessions), "stot": str(st.total),
                           "status": self.status(srv, st),
                           "check_status": st.read_as[1] if st.read_as else "L7OK" if up else "L4CON"})
            lines.append(",".join(values[c] for c in STAT_COLUMNS) + ",")
        return "\n".join(lines) + "\n\n"

    def show_state(self, backend: str) -> str:
        out = ["1", "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
                    "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
                    "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port"]
        ports = {str(s.get("backend")): int(s.get("port") or 8000) for s in self.settings["services"].values()}
        for i, ((be, srv), st) in enumerate(self.servers.items()):
            if be != backend:
                continue
            bits = {"ready": 0, "drain": 0x08, "maint": 0x01}[st.admin] | (0x04 if st.config_maint else 0)
            op = 2 if self.op_up(srv, st) else 0
            checks = "0 6 3 4 6 0 0 0 -"  # time since the last change .. fqdn: not read
            out.append(f"3 {be} {i + 1} {srv} {self.address(srv)} {op} {bits} 1 1 {checks} {ports.get(be, 8000)}")
        return "\n".join(out) + "\n\n"

    def set_server(self, target: str, what: str, value: str) -> str:
        backend, _, server = target.partition("/")
        state = self.servers.get((backend, server))
        if state is None:
            return "No such server."
        if what == "state" and value in ("ready", "drain", "maint"):
            state.admin = value
            return ""
        if what == "health" and value in ("up", "down"):
            state.forced = (value == "up", self.clock.sleeps)
            return ""
        return f"'set server <srv> {what}' : unknown value '{value}'."

    def show_proc(self) -> str:
        lines = ["#<PID>          <type>          <reloads>       <uptime>        <version>",
                 "1               master          0               0d00h10m00s     3.0.5"]
        lines += ["# workers"] + [f"{pid}             worker          0               0d00h10m00s     3.0.5"
                                  for pid in self.workers]
        return "\n".join(lines) + "\n"

    def reloaded(self, container: str, signal: str) -> None:
        """The engine got `docker kill --signal USR2` for the proxy: a new worker replaces the old."""
        if container == self.settings["container"] and signal == "USR2":
            self.workers = [str(int(self.workers[-1]) + 1)]

    # ------------------------------------------------------------------------------------------- the sockets
    def serve(self) -> FakeHAProxy:
        proxy = self

        class Admin(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline().decode()
                self.wfile.write(proxy.answer(line).encode())

        class Master(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline().decode()
                command = line.strip().removesuffix("; quit").strip()
                proxy.commands.append(f"master: {command}")
                text = proxy.show_proc() if command == "show proc" else "Unknown command.\n"
                self.wfile.write(text.encode())

        for path, handler in ((self.settings["admin_socket"], Admin), (self.settings["master_socket"], Master)):
            server = socketserver.ThreadingUnixStreamServer(path, handler)
            server.daemon_threads = True
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        return self

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join()


# ---------------------------------------------------------------------------------------------------- the apps
@dataclass
class FakeHttp:
    """health.HttpGet: a container's app by its address, or the proxy routing by Host to its UP server."""

    docker: FakeDocker
    haproxy: FakeHAProxy
    asked: list[tuple[str, int, str, str]] = field(default_factory=list)
    proxy_hook: Callable[[], None] | None = None  # called on each request through the proxy

    def __call__(  # noqa: PLR0917 - the HttpGet signature
        self, ip: str, port: int, path: str, host: str, timeout: float = 2.0, tls: bool = False
    ) -> tuple[int, str]:
        self.asked.append((ip, port, path, host))
        if ip == PROXY_IP:
            if self.proxy_hook is not None:
                self.proxy_hook()
            return self.through_proxy(host)
        box = self.docker.box_at(ip)
        if box is None or not self.docker.app_up(box):
            return 0, "[Errno 111] Connection refused"
        status = box.behaviour.path_status
        return status, json.dumps({"status": "ok" if status == 200 else "unavailable",
                                   "version": self.docker.answer_version(box)})

    def through_proxy(self, host: str) -> tuple[int, str]:
        services = self.haproxy.settings["services"]
        backend = next((s["backend"] for s in services.values() if s["domain"] == host), None)
        if backend is None:
            return 404, "No service for this host name."
        with self.haproxy.lock:
            routed = self.haproxy.routed(backend)
            self.haproxy.balanced += 1
        box = self.docker.boxes.get(routed[self.haproxy.balanced % len(routed)]) if routed else None  # round robin
        if box is None or not self.docker.app_up(box):
            return 503, "<html><body><h1>503 Service Unavailable</h1></body></html>"
        return 200, json.dumps({"status": "ok", "version": self.docker.answer_version(box)})
