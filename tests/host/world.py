"""One host with an edge proxy, wired to the fakes: the real host modules (steps, recovery, proxy, store, lock) run
against it, and the helpers below call them the way the controller does (one command, one Rollout)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fake_edge import FakeHAProxy, FakeHttp
from fakes import NETWORK, Behaviour, FakeClock, FakeDocker

from slipway_core import contract, release_rules
from slipway_core.host import recovery
from slipway_core.host.docker import health_status, running
from slipway_core.host.lock import Lock
from slipway_core.host.proxy import Proxy
from slipway_core.host.release import Host
from slipway_core.host.run import Run
from slipway_core.host.steps import Rollout
from slipway_core.host.store import Store

SERVICE = "notes-api"
DOMAIN = "notes.example.test"
BACKEND = contract.backend_name(SERVICE)
REPOSITORY = "registry.example.test/notes-api"
SECRET = "postgresql://notes:s3cret-value@postgres/notes"  # pragma: allowlist secret
STALE_AFTER = 120.0


def proxy_settings(sock_dir: str, live_dir: str, replicas: int = 1) -> dict[str, Any]:
    """As the edge_proxy role writes them; with one replica, as written before replicas (no `servers`)."""
    servers = {c: [s["name"] for s in found] for c, found in release_rules.edge_servers(SERVICE, replicas).items()}
    return {
        "container": "edge-proxy",
        "admin_socket": os.path.join(sock_dir, "admin.sock"),
        "master_socket": os.path.join(sock_dir, "master.sock"),
        "live_dir": live_dir,
        "check_command": ["haproxy", "-c", "-f", "/usr/local/etc/haproxy/live", "-f",
                          "/usr/local/etc/haproxy/haproxy.cfg"],
        "services": {
            SERVICE: {"id": contract.service_id(SERVICE), "backend": BACKEND, "domain": DOMAIN, "port": 8000,
                      "health_path": "/healthz", **({"servers": servers} if replicas > 1 else {})},
        },
    }


@dataclass
class World:
    tmp: Path
    clock: FakeClock
    docker: FakeDocker
    haproxy: FakeHAProxy
    http: FakeHttp
    proxy: Proxy
    host: Host

    @property
    def root(self) -> str:
        return str(self.tmp / "state")

    # ------------------------------------------------------------------------------------------------ set-up
    @staticmethod
    def ref(version: str) -> str:
        return f"{REPOSITORY}:{version}"

    def image(self, version: str, behaviour: Behaviour | None = None, *, on_host: bool = True) -> str:
        return self.docker.add_image(self.ref(version), behaviour, on_host=on_host)

    def spec(self, version: str, **over: Any) -> dict[str, Any]:
        """The release as the role sends it on stdin."""
        spec: dict[str, Any] = {
            "service": SERVICE,
            "version": version,
            "image_ref": self.ref(version),
            "port": 8000,
            "domain": DOMAIN,
            "health_path": "/healthz",
            "network": NETWORK,
            "env": {"LOG_LEVEL": "info"},
            "secret_env": {"DATABASE_URL": SECRET},
            "resources": {"cpus": "0.5", "memory": "256m"},
            "container": {"stop_grace_period": 10, "health_interval": "1s", "pids_limit": 128},
            "migrate_command": [],
            "backup_db": "",
            "backup_command": str(self.tmp / "bin" / "slipway-pg-backup"),
            "postgres_container": "postgres",
            "confirm_path": "/version",
            "switch_timeout": 5,
            "drain_timeout": 5,
            "health_timeout": 3,
            "stop_grace_period": 10,
            "file_sd_dir": str(self.tmp / "targets"),
            "image_archive": "",
            "registry_username": "",
            "registry_password": "",
        }
        spec.update(over)
        return spec

    def store(self) -> Store:
        return Store(self.root, SERVICE, self.clock)

    def run(self, run_id: str) -> Run:
        return Run(self.store(), run_id)

    def rollout(self, run_id: str, spec: dict[str, Any]) -> Rollout:
        store = self.store()
        return Rollout(self.host, store, Run(store, run_id), spec)

    # ------------------------------------------------------------------------------------- controller calls
    def begin(self, version: str, run_id: str, *, start_when_ready: bool = True, force: bool = False,
              **over: Any) -> dict[str, Any]:
        return self.rollout(run_id, self.spec(version, **over)).begin(STALE_AFTER, force, start_when_ready)

    def advance(self, version: str, run_id: str, steps: list[str], **over: Any) -> dict[str, Any]:
        return self.rollout(run_id, self.spec(version, **over)).advance(steps)

    def deploy(self, version: str, run_id: str, **over: Any) -> dict[str, Any]:
        """begin, then the steps left in two calls (prepare + start, then health to record), as the role does."""
        answer = self.begin(version, run_id, **over)
        if answer["result"] != contract.CONTINUE:
            return answer
        todo: list[str] = answer["todo"]
        first = [s for s in todo if s in ("image", "backup", "migrate", "start")]
        if first:
            answer = self.advance(version, run_id, first, **over)
        return self.advance(version, run_id, [s for s in todo if s not in first], **over)

    def finish(self, run_id: str, phase: str = "", message: str = "") -> dict[str, Any]:
        store = self.store()
        return recovery.finish(self.host, store, Run(store, run_id), phase, message)

    # ------------------------------------------------------------------------------------------- questions
    def state(self) -> dict[str, Any]:
        return self.store().state()

    def history(self) -> list[dict[str, Any]]:
        return self.store().history(100)

    def lock(self) -> dict[str, Any] | None:
        return Lock(self.store()).held()

    def routed(self) -> list[str]:
        with self.haproxy.lock:
            return self.haproxy.routed(BACKEND)

    def serves(self) -> str:
        """The version the service answers through the proxy."""
        code, body = self.http.through_proxy(DOMAIN)
        assert code == 200, body
        return str(json.loads(body)["version"])

    def assert_settled(self, run_id: str) -> None:
        """The invariants after any run, whatever happened to it."""
        routed = self.routed()
        live = self.store().live()
        assert live is not None
        assert routed == sorted(contract.colour_containers(SERVICE, live["colour"], live.get("replicas") or 1)), (
            f"the proxy routes {routed}")
        for name in routed:
            info = self.docker.inspect(name)
            assert running(info)
            assert health_status(info) == "healthy"
        assert self.proxy.live(SERVICE) == live["colour"]
        assert self.lock() is None
        assert not [name for name in self.docker.names() if name.endswith("-kept")]
        assert len([line for line in self.history() if line["run_id"] == run_id and line["action"] != "unlock"]) <= 1
