"""The rules of a rollout across app hosts (docs/topology.md, "The cluster rollout"): the port where an app host
publishes each replica of a service's colours on its private address, and the edge's servers of a colour, one per
(app host, replica). Shared by the collection's filters (the edge_proxy and app_release roles) and the host program
(shipped in its zipapp beside the contract). Standard library only, Python 3.8+.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Mapping, Sequence

from .contract import (
    COLOURS,
    MAX_REPLICAS,
    SLOT_SIZE,
    InputRefused,
    check_service_name,
    check_version,
    container_name,
    shown,
)
from .release_rules import check_replicas, replica_env_var

# Published ports: one block of SLOT_SIZE per slot, blue replicas first, then green (the fixed addresses' layout),
# from this base. A /16 shared network has 2047 slots: the last port is 20000 + 2047 * 16 - 1 = 52751, clear of the
# kernel's ephemeral range (32768-60999 on Linux only overlaps where it does not matter: these are listening ports
# on one address, taken by docker-proxy before any client could pick them).
PUBLISH_PORT_BASE = 20000


def published_port(slot: int, colour: str, replica: int = 0) -> int:
    """The port on the app host's private address where replica `replica` of `colour` of the service holding `slot`
    on that host answers (its container port published there by Docker)."""
    if isinstance(slot, bool) or not isinstance(slot, int) or slot < 0 or colour not in COLOURS \
            or not 0 <= replica < MAX_REPLICAS:
        raise InputRefused(f"no published port for slot {shown(slot)}, {colour} replica {replica}")
    return PUBLISH_PORT_BASE + slot * SLOT_SIZE + COLOURS.index(colour) * MAX_REPLICAS + replica


def check_publish_address(value: Any) -> str:
    """The app host's private address its colours are published on ("" for none: the edge is on this host)."""
    if value in (None, ""):
        return ""
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError as err:
        raise InputRefused(f"publish_address {shown(value)} is not an IPv4 address: give the app host's "
                           "slipway_private_address") from err


def publish_binding(address: str, slot: int, colour: str, replica: int, port: int) -> str:
    """`docker run --publish` for one replica: only on the private address, never 0.0.0.0."""
    return f"{check_publish_address(address)}:{published_port(slot, colour, replica)}:{int(port)}"


HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def _scrape_target(value: Any) -> str:
    """`<IPv4 address>:<port>`, or InputRefused."""
    address, _, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    try:
        address = check_publish_address(address or None)
    except InputRefused:
        address = ""
    if not address or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputRefused(f"scrape target {shown(value)} is not <IPv4 address>:<port>")
    return f"{address}:{int(port)}"


def scrape_files(plan: Any) -> dict[str, list[dict[str, Any]]]:
    """The Prometheus file_sd files on the monitoring host for app hosts whose colours are published (docs/topology.md,
    "Monitoring across hosts"), from the cluster rollout's plan (cluster_rollout.scrape_plan): for each service that
    went live, {service, colour, version, hosts: {app host: its replicas' `<address>:<port>`}}. One file per service
    and app host, `<service>.<host>.json`, naming each replica with the labels service, colour, host and version."""
    if not isinstance(plan, list):
        raise InputRefused(f"the scrape plan is {shown(plan)}: give a list of {{service, colour, version, hosts}}")
    files: dict[str, list[dict[str, Any]]] = {}
    for item in plan:
        if not isinstance(item, dict) or not isinstance(item.get("hosts"), dict):
            raise InputRefused(f"{shown(item)} is not {{service, colour, version, hosts: {{host: [targets]}}}}")
        service, colour = check_service_name(item.get("service")), item.get("colour")
        version = check_version(item.get("version"))
        if colour not in COLOURS:
            raise InputRefused(f"{service}: colour {shown(colour)} is not one of {', '.join(COLOURS)}")
        for host, targets in item["hosts"].items():
            if not isinstance(host, str) or not HOST_RE.fullmatch(host) or not isinstance(targets, list) \
                    or not targets:
                raise InputRefused(f"{service}: host {shown(host)} with targets {shown(targets)} cannot be scraped")
            labels = {"service": service, "colour": str(colour), "host": host, "version": version}
            scraped = [_scrape_target(t) for t in targets]
            files[scrape_file_name(service, host)] = [{"targets": scraped, "labels": labels}]
    return files


def scrape_file_name(service: str, host: str) -> str:
    """The file_sd file of one service's replicas on one app host: `<service>.<host>.json`."""
    return f"{service}.{host}.json"


def scrape_file_of(name: str) -> tuple[str, str] | None:
    """(service, app host) of a file named by scrape_file_name, None for any other name: the one-VM file
    `<service>.json` has no host part, and a service name has no '.', so the first '.' ends it."""
    service, dot, rest = name.partition(".")
    host = rest[: -len(".json")] if rest.endswith(".json") else ""
    return (service, host) if dot and service and HOST_RE.fullmatch(host) else None


def remote_server_name(service: str, colour: str, replica: int, host_index: int) -> str:
    """The edge's server of a replica on another app host: its container's name and the app host's index (1 for
    the first app host of the inventory), e.g. notes-api-blue.2."""
    return f"{container_name(service, colour, replica)}.{host_index}"


def is_remote_server(name: str) -> bool:
    """Whether an edge server is a replica on another app host (remote_server_name's `.<index>`): container names
    have no dot."""
    return "." in name


def edge_members(service: str, replicas: int, port: int, local: Mapping[str, Sequence[str]] | None,
                 remote: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The edge's servers of each colour of a service: `local` (colour -> the fixed addresses of its replicas on the
    edge's own shared network, or None when the edge is no app host) first, then for each app host on another host
    in `remote` ({index, address, slot}: its 1-based place among the app hosts, its private address, the service's
    slot there) one server per replica at the published port. Each server: {name, address, port, enabled_by}; the
    first serves whenever its colour is live, every other while the live file defines its `enabled_by` (as
    replicas on one host)."""
    count = check_replicas(replicas)
    out: dict[str, list[dict[str, Any]]] = {}
    for colour in COLOURS:
        members: list[dict[str, Any]] = []
        if local is not None:
            members += [{"name": container_name(service, colour, r), "address": str(local[colour][r]),
                         "port": int(port)} for r in range(count)]
        for host in remote:
            members += [{"name": remote_server_name(service, colour, r, int(host["index"])),
                         "address": check_publish_address(host["address"]),
                         "port": published_port(int(host["slot"]), colour, r)} for r in range(count)]
        if not members:
            raise InputRefused(f"the edge has no server for {service}: no app host is given")
        out[colour] = [{**m, "enabled_by": replica_env_var(service, k) if k else ""} for k, m in enumerate(members)]
    return out
