"""The host program's answer to a rollout, read in the contract's result schema (slipway_core.contract).

A rollout registers up to three calls of slipway-release (begin, run, finish after a failure); the last one that
ran has the final word. `[finish, run, begin] | slipway.core.last_answer` returns it, so no playbook picks among
answers or parses them itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.slipway.core.plugins.plugin_utils.core import load_contract

DOCUMENTATION = """
name: last_answer
short_description: The final answer of the host program among registered results
description:
  - Takes registered results of slipway.core.host_command, newest first, and returns the answer of the first one
    that ran (not skipped, not undefined), in the contract's result schema; result C(unknown) when none did.
options:
  _input:
    description: Registered results, newest first.
    type: list
    required: true
"""


def last_answer(registered: Any) -> dict[str, Any]:
    if not isinstance(registered, list):
        raise AnsibleFilterError("last_answer: give a list of registered results, newest first")
    ran = [item for item in registered if isinstance(item, Mapping) and "rc" in item and not item.get("skipped")]
    answer: dict[str, Any] = load_contract().parse_result(ran[0].get("stdout", "") if ran else None)
    return answer


class FilterModule:
    """Filters of the host program's answers."""

    def filters(self) -> dict[str, Any]:
        return {"last_answer": last_answer}
