"""Audit running containers against the CIS Docker Benchmark (v1.6) section 5 checks that `docker inspect` can answer.

Usage: `docker inspect $(docker ps -q) | python -m slipway.container_audit [--accept FILE] [--json]`

Each check reads one container's inspect document and answers a warning (a reason) or nothing. The manual checks of
section 5 (5.6 sshd, 5.8 open ports, 5.22/5.23 docker exec, 5.27 image freshness) and the host-dependent ones (5.1
AppArmor profile, 5.2 SELinux) are not here. `--accept` names a JSON file {container: {check id: why}}
(container "*": every container): a warning that is accepted there is reported as accepted with its reason, not
counted; the exit status is 1 when any warning is left, so a test or a CI step fails on a new one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Inspect = Mapping[str, Any]
# Host directories that must never be mounted writable into a container (CIS 5.5).
SENSITIVE_DIRS = ("/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr")


def _host(doc: Inspect) -> Mapping[str, Any]:
    return doc.get("HostConfig") or {}


def _mounts(doc: Inspect) -> list[Mapping[str, Any]]:
    return list(doc.get("Mounts") or [])


def _caps(doc: Inspect) -> str | None:
    dropped = {str(c).upper().removeprefix("CAP_") for c in _host(doc).get("CapDrop") or []}
    return None if "ALL" in dropped else "capabilities not dropped (no cap_drop ALL)"


def _privileged(doc: Inspect) -> str | None:
    return "privileged" if _host(doc).get("Privileged") else None


def _sensitive_mounts(doc: Inspect) -> str | None:
    bad = [
        str(m.get("Source"))
        for m in _mounts(doc)
        if m.get("Type") == "bind" and m.get("RW") and (str(m.get("Source", "")).rstrip("/") or "/") in SENSITIVE_DIRS
    ]
    return f"sensitive host directory mounted writable: {', '.join(sorted(set(bad)))}" if bad else None


def _bindings(doc: Inspect) -> list[tuple[str, Mapping[str, Any]]]:
    ports = _host(doc).get("PortBindings") or {}
    return [(port, b) for port, bindings in ports.items() for b in bindings or []]


def _privileged_ports(doc: Inspect) -> str | None:
    low = sorted({b.get("HostPort", "") for _, b in _bindings(doc) if 0 < int(b.get("HostPort") or 0) < 1024})
    return f"privileged host port(s) {', '.join(low)} published" if low else None


def _host_network(doc: Inspect) -> str | None:
    return "shares the host's network namespace" if _host(doc).get("NetworkMode") == "host" else None


def _memory(doc: Inspect) -> str | None:
    return None if int(_host(doc).get("Memory") or 0) > 0 else "no memory limit"


def _cpu(doc: Inspect) -> str | None:
    host = _host(doc)
    limited = int(host.get("NanoCpus") or 0) > 0 or int(host.get("CpuQuota") or 0) > 0
    shares = int(host.get("CpuShares") or 0)
    return None if limited or shares not in (0, 1024) else "no CPU limit or priority"


def _read_only(doc: Inspect) -> str | None:
    return None if _host(doc).get("ReadonlyRootfs") else "root filesystem writable"


def _bind_address(doc: Inspect) -> str | None:
    every = ("", "0.0.0.0", "::")  # noqa: S104 - the addresses a binding is compared with, not a bind
    wild = sorted({port for port, b in _bindings(doc) if b.get("HostIp", "") in every})
    return f"port(s) {', '.join(wild)} published on every host address" if wild else None


def _restart(doc: Inspect) -> str | None:
    policy = _host(doc).get("RestartPolicy") or {}
    name, retries = policy.get("Name") or "no", int(policy.get("MaximumRetryCount") or 0)
    if name == "on-failure" and 0 < retries <= 5:
        return None
    return f"restart policy {name}{f':{retries}' if retries else ''}, not on-failure:5"


def _namespace(key: str, what: str) -> Callable[[Inspect], str | None]:
    def check(doc: Inspect) -> str | None:
        return f"shares the host's {what} namespace" if _host(doc).get(key) == "host" else None

    return check


def _devices(doc: Inspect) -> str | None:
    devices = _host(doc).get("Devices") or []
    return f"host device(s) {', '.join(str(d.get('PathOnHost')) for d in devices)}" if devices else None


def _propagation(doc: Inspect) -> str | None:
    shared = [str(m.get("Destination")) for m in _mounts(doc) if m.get("Propagation") in ("shared", "rshared")]
    return f"mount propagation shared: {', '.join(shared)}" if shared else None


def _security_opts(doc: Inspect) -> list[str]:
    return [str(o).replace(":", "=", 1) for o in _host(doc).get("SecurityOpt") or []]


def _seccomp(doc: Inspect) -> str | None:
    return "seccomp unconfined" if "seccomp=unconfined" in _security_opts(doc) else None


def _cgroup_parent(doc: Inspect) -> str | None:
    parent = _host(doc).get("CgroupParent") or ""
    return f"cgroup parent {parent}" if parent else None


def _no_new_privileges(doc: Inspect) -> str | None:
    opts = _security_opts(doc)
    return None if "no-new-privileges" in opts or "no-new-privileges=true" in opts else "may gain new privileges"


def _healthcheck(doc: Inspect) -> str | None:
    test = ((doc.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    return None if test and test[0] != "NONE" else "no health check"


def _pids(doc: Inspect) -> str | None:
    return None if int(_host(doc).get("PidsLimit") or 0) > 0 else "no pids limit"


def _default_bridge(doc: Inspect) -> str | None:
    return "on the default bridge network" if _host(doc).get("NetworkMode") in ("default", "bridge") else None


def _docker_socket(doc: Inspect) -> str | None:
    socket = [m for m in _mounts(doc) if str(m.get("Source", "")).endswith("docker.sock")]
    return "the Docker socket is mounted" if socket else None


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    run: Callable[[Inspect], str | None]


CHECKS: tuple[Check, ...] = (
    Check("5.3", "Linux kernel capabilities are restricted", _caps),
    Check("5.4", "privileged containers are not used", _privileged),
    Check("5.5", "sensitive host system directories are not mounted", _sensitive_mounts),
    Check("5.7", "privileged ports are not mapped", _privileged_ports),
    Check("5.9", "the host's network namespace is not shared", _host_network),
    Check("5.10", "memory usage is limited", _memory),
    Check("5.11", "CPU priority is set", _cpu),
    Check("5.12", "the root filesystem is mounted read-only", _read_only),
    Check("5.13", "incoming traffic is bound to a specific host interface", _bind_address),
    Check("5.14", "the on-failure restart policy is set to 5", _restart),
    Check("5.15", "the host's process namespace is not shared", _namespace("PidMode", "process")),
    Check("5.16", "the host's IPC namespace is not shared", _namespace("IpcMode", "IPC")),
    Check("5.17", "host devices are not directly exposed", _devices),
    Check("5.19", "mount propagation mode is not shared", _propagation),
    Check("5.20", "the host's UTS namespace is not shared", _namespace("UTSMode", "UTS")),
    Check("5.21", "the default seccomp profile is not disabled", _seccomp),
    Check("5.24", "the cgroup is the default", _cgroup_parent),
    Check("5.25", "the container cannot gain additional privileges", _no_new_privileges),
    Check("5.26", "container health is checked at runtime", _healthcheck),
    Check("5.28", "the PIDs cgroup limit is used", _pids),
    Check("5.29", "Docker's default bridge is not used", _default_bridge),
    Check("5.30", "the host's user namespace is not shared", _namespace("UsernsMode", "user")),
    Check("5.31", "the Docker socket is not mounted inside the container", _docker_socket),
)


@dataclass(frozen=True)
class Finding:
    container: str
    check: str
    reason: str
    accepted: str = ""  # why this warning is accepted ("" = it counts)


def name_of(doc: Inspect) -> str:
    return str(doc.get("Name") or doc.get("Id") or "?").lstrip("/")


def audit(docs: Sequence[Inspect], accepted: Mapping[str, Mapping[str, str]] | None = None) -> list[Finding]:
    """Every warning of every container, each marked accepted when `accepted[container][check]` (or
    `accepted["*"][check]`, for every container) gives a reason."""
    accepted = accepted or {}
    findings = []
    for doc in docs:
        name = name_of(doc)
        reasons = {**(accepted.get("*") or {}), **(accepted.get(name) or {})}
        for check in CHECKS:
            reason = check.run(doc)
            if reason:
                findings.append(Finding(name, check.id, reason, reasons.get(check.id, "")))
    return findings


def counted(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if not f.accepted]


def table(docs: Sequence[Inspect], findings: Sequence[Finding]) -> str:
    """One row per container: its warnings (counted) and accepted ones, then the total."""
    lines = ["| container | warnings | checks warned | accepted |", "|---|---:|---|---|"]
    for doc in docs:
        name = name_of(doc)
        mine = [f for f in findings if f.container == name]
        warned = ", ".join(f.check for f in counted(mine)) or "-"
        ok = ", ".join(f"{f.check} ({f.accepted})" for f in mine if f.accepted) or "-"
        lines.append(f"| {name} | {len(counted(mine))} | {warned} | {ok} |")
    lines.append(f"| **all {len(docs)}** | **{len(counted(findings))}** | | |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, stdin: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slipway.container_audit", description=__doc__.splitlines()[0])
    parser.add_argument("--accept", help="JSON file {container: {check id: reason}} of accepted warnings")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON instead of a table")
    args = parser.parse_args(argv)
    docs = json.load(stdin or sys.stdin)
    accepted = {}
    if args.accept:
        with open(args.accept, encoding="utf-8") as handle:
            accepted = json.load(handle)
    findings = audit(docs, accepted)
    if args.json:
        print(json.dumps([f.__dict__ for f in findings], indent=2))
    else:
        print(table(docs, findings))
        for f in findings:
            print(f"{f.container}: CIS {f.check}: {f.reason}" + (f" (accepted: {f.accepted})" if f.accepted else ""))
    return 1 if counted(findings) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
