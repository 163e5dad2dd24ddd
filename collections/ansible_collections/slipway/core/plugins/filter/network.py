"""The shared network's plan (slipway_core.contract.network_plan), for the roles that need a fixed address.

infra_network creates the network with the plan's ip_range; postgresql and redis start at the plan's fixed
addresses; edge_proxy binds its stats port on the gateway; prometheus scrapes it there. An empty subnet means
Slipway's default (contract.NETWORK_SUBNET_DEFAULT).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.slipway.core.plugins.plugin_utils.core import load_contract

DOCUMENTATION = """
name: network_plan
short_description: The layout of Slipway's shared network
description:
  - Takes the network's IPv4 subnet (CIDR, /16 to /24, private; empty for Slipway's default) and returns subnet,
    gateway, ip_range (Docker's pool, the lower half), reserved (the upper half), infra (the fixed addresses of
    postgres and redis) and slots (how many services fit).
options:
  _input:
    description: The subnet, e.g. 172.30.0.0/22, or empty.
    type: str
    required: true
"""


def network_plan(subnet: Any) -> dict[str, Any]:
    contract = load_contract()
    try:
        plan: dict[str, Any] = contract.network_plan(str(subnet or "") or contract.NETWORK_SUBNET_DEFAULT)
    except contract.InputRefused as err:
        raise AnsibleFilterError(str(err)) from err
    return plan


class FilterModule:
    """Filters of the shared network."""

    def filters(self) -> dict[str, Any]:
        return {"network_plan": network_plan}
