"""The host program's answers, read in the contract's schemas (slipway_core.contract).

`history_records(host)` and `unlocked(host, reason)` turn the answers of `slipway-release history` and `unlock`
into the records `slipway history` and `slipway unlock` show (the contract's HISTORY_SHOWN keys, the audit
included).

A rollout registers up to three calls of slipway-release (begin, run, finish after a failure); the last one that
ran has the final word. `[finish, run, begin] | slipway.core.last_answer(service)` returns it, so no playbook picks
among answers or parses them itself. Registered variables outlive a loop's iteration (a rescue that ran for one
service still holds its result in the next), so an answer about another service is passed over.
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
  service:
    description: The service rolled out; answers naming another service (left by an earlier iteration) are skipped.
    type: str
    default: ""
"""


def last_answer(registered: Any, service: str = "") -> dict[str, Any]:
    if not isinstance(registered, list):
        raise AnsibleFilterError("last_answer: give a list of registered results, newest first")
    contract = load_contract()
    for item in registered:
        if isinstance(item, Mapping) and "rc" in item and not item.get("skipped"):
            answer: dict[str, Any] = contract.parse_result(item.get("stdout", ""))
            if not service or answer["service"] in ("", service):
                return answer
    unknown: dict[str, Any] = contract.parse_result(None)
    return unknown


def history_records(lines: Any, host: str) -> list[dict[str, Any]]:
    """History lines as `slipway history` shows them: the host, then the contract's HISTORY_SHOWN keys (empty when a
    line has none: written before the audit, whose actor was `who`); the one record of a cluster rollout also has
    `hosts`, each host's result (host, phase, result, message)."""
    if not isinstance(lines, list):
        raise AnsibleFilterError("history_records: give the list of history lines slipway-release answered")
    shown = load_contract().HISTORY_SHOWN
    records = []
    for line in lines:
        if isinstance(line, Mapping):
            known = {**line, "actor": line.get("actor") or line.get("who") or ""}
            hosts = [h for h in line.get("hosts") or [] if isinstance(h, Mapping)]
            records.append({"host": host, **{key: known.get(key, "") for key in shown},
                            **({"hosts": [{k: str(h.get(k, "")) for k in ("host", "phase", "result", "message")}
                                          for h in hosts]} if hosts else {})})
    return records


def unlocked(released: Any, host: str, reason: str) -> list[dict[str, Any]]:
    """What `slipway-release unlock` released: one record per lock, naming who held it."""
    if not isinstance(released, list):
        raise AnsibleFilterError("unlocked: give the list `released` slipway-release unlock answered")
    describe = load_contract().describe_lock
    return [
        {"host": host, "service": item.get("service", ""), "released": describe(item.get("lock") or {}),
         "note": item.get("note", ""), "reason": reason}
        for item in released
        if isinstance(item, Mapping)
    ]


class FilterModule:
    """Filters of the host program's answers."""

    def filters(self) -> dict[str, Any]:
        return {"last_answer": last_answer, "history_records": history_records, "unlocked": unlocked}
