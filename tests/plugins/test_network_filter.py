"""The network_plan filter (slipway.core.network_plan): the contract's plan, Slipway's default for an empty
subnet, and a refusal Ansible shows as the task's message."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import load_filter

from slipway_core import contract

network_plan = load_filter("network").network_plan


def test_an_empty_subnet_is_slipway_s_default() -> None:
    assert network_plan("") == network_plan(None) == contract.network_plan(contract.NETWORK_SUBNET_DEFAULT)
    assert network_plan("")["infra"]["postgres"] == "172.30.2.1"


def test_a_given_subnet_is_planned() -> None:
    plan = network_plan("10.20.0.0/24")
    assert (plan["gateway"], plan["ip_range"], plan["infra"]["redis"]) == ("10.20.0.1", "10.20.0.0/25", "10.20.0.130")


def test_a_bad_subnet_fails_the_task_naming_the_rule() -> None:
    with pytest.raises(AnsibleFilterError, match="not private or not /16 to /24; give a private IPv4 network"):
        network_plan("100.64.0.0/24")
