"""Where an app host publishes its colours for an edge on another host (docs/topology.md, "The cluster rollout"):
each replica's container port on the host's private address at the port the contract derives from the service's
slot here (slipway_core.cluster). The release spec's `publish_address` says the address (the app_release role
passes the host's slipway_private_address when some edge is another host); without it nothing is published, as on
one VM. `first_colour` is the cluster's too: the colour an app host with no live release starts."""

from __future__ import annotations

from typing import Any

from slipway_core import cluster, contract
from slipway_core.host.addresses import AddressError, Slots
from slipway_core.host.run import Failed


def check(spec: dict[str, Any]) -> None:
    """A bad `publish_address` or `first_colour` is refused before anything runs."""
    try:
        cluster.check_publish_address(spec.get("publish_address"))
    except contract.InputRefused as err:
        raise Failed("preflight", f"the release on stdin: {err}", contract.EXIT_USAGE) from err
    if spec.get("first_colour", "blue") not in contract.COLOURS:
        raise Failed("preflight", f"the release on stdin: first_colour {spec['first_colour']!r} is not one of "
                                  f"{', '.join(contract.COLOURS)}", contract.EXIT_USAGE)


def first_colour(spec: dict[str, Any]) -> str:
    """The colour a host with no live release starts: blue, unless the cluster rollout asks for the colour the other
    app hosts start (an app host added to a cluster whose live colour is blue starts green with them)."""
    return str(spec.get("first_colour") or "blue")


def bindings(slots: Slots, spec: dict[str, Any], colour: str, replica: int) -> list[str]:
    """`--publish` values for one replica of `colour` (none without a publish_address). The service's slot is
    allocated before (addresses.colour, for the replica's fixed address)."""
    address = cluster.check_publish_address(spec.get("publish_address"))
    if not address:
        return []
    slot = slots.read().get(str(spec["service"]))
    if slot is None:
        raise AddressError(f"{spec['service']} has no address slot in {slots.path} yet")
    return [cluster.publish_binding(address, slot, colour, replica, int(spec["port"]))]


def targets(slots: Slots, spec: dict[str, Any], colour: str, replicas: int) -> list[str]:
    """Where Prometheus on another host scrapes each replica of `colour` here (`<address>:<published port>`), answered
    once its gate passed (`published`, cluster_rollout.scrape_plan); none without a publish_address or slot."""
    address = cluster.check_publish_address(spec.get("publish_address"))
    slot = slots.read().get(str(spec["service"])) if address else None
    if slot is None:
        return []
    return [f"{address}:{cluster.published_port(slot, colour, r)}" for r in range(replicas)]
