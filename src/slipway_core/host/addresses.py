"""Fixed addresses on the shared network: each service's slot, allocated once per host and kept.

The edge routes to a colour by its fixed address and an app reaches PostgreSQL and Redis by theirs (contract's
network_plan), so neither depends on Docker's embedded DNS, which does not answer while the engine restarts.
A service's slot is the index of its block of addresses in the network's reserved half; slots live in one file
(contract.ADDRESSES_FILE), written under an exclusive lock, and never move: a service added later gets the lowest
free slot, and a service removed from the registry keeps its slot (its stopped colours still hold the addresses).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Any, Iterator

from slipway_core import contract
from slipway_core.host.docker import Docker
from slipway_core.host.system import read_json, write_json


class AddressError(Exception):
    """The network or the slots cannot give an address; the message names the fix."""


def network_subnet(docker: Docker, network: str, planned: str = "") -> str:
    """The network's configured subnet, checked against the plan Slipway creates networks with (ip_range = the
    lower half). A network without one (made before fixed addresses, or by hand) is refused, naming the fix.
    `planned`: the subnet to answer while the network does not exist yet (a check-mode preview)."""
    info = docker.network(network)
    if info is None and planned:
        return str(contract.network_plan(planned)["subnet"])
    if info is None:
        raise AddressError(f"network {network} does not exist; run playbooks/infra.yml first")
    config = ((info.get("IPAM") or {}).get("Config") or [{}])[0] or {}
    subnet, ip_range = str(config.get("Subnet") or ""), str(config.get("IPRange") or "")
    try:
        plan = contract.network_plan(subnet)
    except contract.InputRefused as err:
        raise AddressError(f"network {network}: {err}") from err
    if ip_range != plan["ip_range"]:
        raise AddressError(
            f"network {network} has subnet {subnet} with ip_range {ip_range or 'unset'}, not {plan['ip_range']}: "
            "it was made before fixed addresses; recreate it once as docs/runbook.md says (\"Move to fixed "
            "addresses\"), then run playbooks/infra.yml"
        )
    return subnet


class Slots:
    """The slot of each service on this host (the only writer of contract.ADDRESSES_FILE)."""

    def __init__(self, path: str = contract.ADDRESSES_FILE) -> None:
        self.path = path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(os.path.dirname(self.path), mode=0o755, exist_ok=True)
        with open(f"{self.path}.lock", "a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def read(self) -> dict[str, int]:
        data = read_json(self.path) or {}
        slots = data.get("slots") if isinstance(data.get("slots"), dict) else {}
        return {str(k): int(v) for k, v in (slots or {}).items() if isinstance(v, int)}

    def allocate(self, services: list[str], capacity: int, write: bool = True) -> dict[str, int]:
        """Every service's slot, giving each new one the lowest free slot (saved unless `write` is False)."""
        for service in services:
            contract.check_service_name(service)
        with self._locked():
            slots = self.read()
            new = [s for s in services if s not in slots]
            free = (i for i in range(capacity) if i not in set(slots.values()))
            for service in new:
                slot = next(free, None)
                if slot is None:
                    raise AddressError(
                        f"no free address slot for {service}: the network's reserved half holds {capacity} services "
                        f"and {len(slots)} have one ({self.path}); give infra_network_subnet a larger network"
                    )
                slots[service] = slot
            if new and write:
                write_json(self.path, {"slots": slots}, 0o644)
        return {s: slots[s] for s in services}


def table(
    docker: Docker, network: str, services: list[str], slots: Slots, *, write: bool = True, planned: str = ""
) -> dict[str, Any]:
    """The plan of `network` plus every service's slot and addresses: per colour, one per possible replica (the first
    is the colour's own container). What the edge's configuration is made from. Without `write` nothing is saved, and a
    network that does not exist yet is answered from `planned`."""
    subnet = network_subnet(docker, network, "" if write else planned)
    plan = contract.network_plan(subnet)
    given = slots.allocate(services, plan["slots"], write)
    return {
        **plan,
        "slots": given,  # each service's slot here: where its colours are published for an edge on another host
        "services": {
            s: {
                c: [contract.colour_address(subnet, slot, c, r) for r in range(contract.MAX_REPLICAS)]
                for c in contract.COLOURS
            }
            for s, slot in given.items()
        },
    }


def colour(docker: Docker, network: str, service: str, colour_name: str, slots: Slots, *, replica: int = 0) -> str:
    """The fixed address of one replica of one colour of a service (its slot allocated when it has none yet)."""
    return str(table(docker, network, [service], slots)["services"][service][colour_name][replica])


def pinned_hosts(docker: Docker, network: str, names: list[str]) -> dict[str, str]:
    """Names an app resolves (e.g. postgres, redis) that are containers with a fixed address on `network`: name ->
    address, for the app's /etc/hosts. A name that is no such container (a managed database's host) is left to DNS."""
    out = {}
    for name in names:
        info = docker.inspect(name) if name else None
        net = (((info or {}).get("NetworkSettings") or {}).get("Networks") or {}).get(network) or {}
        fixed = (net.get("IPAMConfig") or {}).get("IPv4Address")
        if fixed:
            out[name] = str(fixed)
    return out
