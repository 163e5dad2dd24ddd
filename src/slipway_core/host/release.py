"""The release a rollout is asked for, and the host it runs on: the release spec's rules (what it must hold, its
public part without secrets, the hash of everything but the image that shapes a container) and Host, what this host
offers a rollout (its engine, clock, HTTP client, and the edge proxy when one runs here)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from slipway_core import contract, release_rules, worker_rules
from slipway_core.host import addresses, health, publish
from slipway_core.host.docker import Docker, health_status
from slipway_core.host.proxy import Proxy, ProxyError
from slipway_core.host.run import Failed
from slipway_core.host.system import Clock

REQUIRED = ("service", "version", "image_ref", "network", "env")
WEB_REQUIRED = ("port", "domain", "health_path")  # not for a worker-only service (replicas 0: no web process)
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
        decides (UP with a passing layer-7 check), and the words say so. While Docker says `starting` (its first
        run is one interval after the start, health.INTERVAL), the container's HEALTHCHECK run now decides."""
        status = health_status(info)
        if status in (None, "healthy") or not health.stale(info, self.clock.time()):
            checked = health.check_now(self.docker, info) if status == "starting" else None
            if checked is not None:
                return checked[0], "starting (its HEALTHCHECK run now " + (
                    "passes)" if checked[0] else f"fails: {checked[1][:200] or 'no output'})")
            return status in (None, "healthy"), status or ""
        try:
            edge = self.proxy.servers(service)[colour] if self.proxy is not None else {}
        except ProxyError:
            edge = {}
        ok = edge.get("serving") is True and str(edge.get("check", "")).startswith("L7OK")
        return ok, f"Docker's {status} is stale (its checks stopped), the edge's check {'passes' if ok else 'fails'}"


def config_hash(spec: dict[str, Any]) -> str:
    """Everything that shapes the running container except the image (compared by its id)."""
    shaped = {k: spec.get(k) for k in HASHED}
    replicas = release_rules.replicas_of(spec)
    if replicas != 1:  # hashed only then: a release recorded before replicas existed still matches
        shaped["replicas"] = replicas
    if spec.get("mounts"):  # the same: only when there are some (the data tier across hosts)
        shaped["mounts"] = spec["mounts"]
    if spec.get("publish_address"):  # the same: only across hosts (an edge on another host)
        shaped["publish_address"] = spec["publish_address"]
    if spec.get("workers"):  # the same: only when the service has workers
        shaped["workers"] = spec["workers"]
    canon = json.dumps(shaped, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()


def public(spec: dict[str, Any]) -> dict[str, Any]:
    """The release without its secrets: what a run's record keeps (recovery reads it)."""
    return {k: v for k, v in spec.items() if k not in SECRET}


def check_spec(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise Failed("preflight", "the release on stdin is not a JSON object", contract.EXIT_USAGE)
    try:
        web = release_rules.has_web(spec)
    except (TypeError, ValueError) as err:
        raise Failed("preflight", f"the release on stdin: replicas {spec.get('replicas')!r} is not a whole number",
                     contract.EXIT_USAGE) from err
    missing = [key for key in REQUIRED + (WEB_REQUIRED if web else ()) if key not in spec]
    if missing:
        raise Failed("preflight", f"the release on stdin lacks {missing[0]!r}", contract.EXIT_USAGE)
    mounts(spec)
    publish.check(spec)
    try:
        release_rules.check_keep_releases(int(spec.get("keep_releases") or release_rules.KEEP_RELEASES_DEFAULT))
        if web:
            release_rules.check_replicas(release_rules.replicas_of(spec))
    except (contract.InputRefused, ValueError) as err:
        raise Failed("preflight", f"the release on stdin: {err} (app_release_keep_releases, replicas)",
                     contract.EXIT_USAGE) from err
    try:
        worker_rules.check_workers(spec.get("workers"))
    except worker_rules.WorkerRefused as err:
        raise Failed("preflight", f"the release on stdin: {err.field}: {err}", contract.EXIT_USAGE) from err
    if not web:
        check_worker_only(spec)
    return spec


def check_worker_only(spec: dict[str, Any]) -> None:
    """A worker-only release (replicas 0) has at least one worker, and runs on one VM only for now: across hosts
    (a publish_address: an edge on another host) it is refused before anything changes."""
    if not spec.get("workers"):
        raise Failed("preflight", "the release on stdin has no web process (replicas 0) and no worker: give the "
                                  "service a port and a domain, or at least one worker", contract.EXIT_USAGE)
    if spec.get("publish_address"):
        raise Failed("preflight", f"{spec['service']} is a worker-only service (no port, no domain): those run on one "
                                  "VM only for now, not across hosts (issue 15); give it a port and a domain, or "
                                  "deploy it to a one-VM environment", contract.EXIT_USAGE)


def mounts(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """The release's read-only bind mounts (`mounts`: [{source, target}], absolute paths without a comma), or
    Failed naming the bad one."""
    out = []
    for item in spec.get("mounts") or []:
        source, target = str((item or {}).get("source", "")), str((item or {}).get("target", ""))
        if not (source.startswith("/") and target.startswith("/")) or "," in source + target:
            raise Failed("preflight", f"mount {item!r} in the release: give absolute source and target paths "
                                      "without commas", contract.EXIT_USAGE)
        out.append((source, target))
    return out
