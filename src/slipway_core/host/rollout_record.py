"""The one history record of a rollout across hosts (docs/topology.md, "The cluster rollout, as built").

Each app host of a cluster run (`begin --cluster`, `rollback --begin`) keeps the history line it would append in the
run's record (Run.history_line). Once every host settled, the controller asks one app host (the first that answered)
for `record-rollout`: that host appends its line once, with `hosts`, every host's result in the rollout (host, the
phase it reached, ok / failed / not run, message). `slipway history` then shows one line per rollout.

The first app host appends it in its settle call, after its own drain and beside the other app hosts' drains: their
results then are the phase they are in (settle) as the controller planned it. When one of them fails it after all
(or does not answer), the controller asks again with `"again": true` and every host's final result: the line of the
run is written again, whole (Store.replace_history), so the record ends as the rollout did.
"""

from __future__ import annotations

from typing import Any

from slipway_core import contract
from slipway_core.host.release import Host
from slipway_core.host.run import Run
from slipway_core.host.store import Store

HOST_KEYS = ("host", "phase", "result", "message")
HOST_RESULTS = ("ok", "failed", "not run")


def check_hosts(hosts: Any) -> list[dict[str, str]]:
    """Each host's result as the controller gives it, or InputRefused naming what is wrong."""
    shape = 'give {"hosts": [{"host", "phase", "result", "message"}, ...]} on stdin'
    if not isinstance(hosts, list) or not hosts:
        raise contract.InputRefused(f"record-rollout: no hosts: {shape}")
    out = []
    for item in hosts:
        if not isinstance(item, dict) or not item.get("host") or item.get("result") not in HOST_RESULTS:
            raise contract.InputRefused(f"record-rollout: {str(item)[:200]} is not a host's result ("
                                        f"result one of {', '.join(HOST_RESULTS)}): {shape}")
        out.append({key: contract.clean_text(item.get(key, ""), 1000 if key == "message" else 200)
                    for key in HOST_KEYS})
    return out


def record(host: Host, store: Store, run: Run, hosts: Any, again: Any = False) -> dict[str, Any]:
    """Append the rollout's one history line here (once: asked again, nothing more is written), or, `again`, write
    the line already appended again with these host results (appended when there is none)."""
    if not isinstance(again, bool):
        raise contract.InputRefused(f"record-rollout: again is true or false, not {str(again)[:50]!r}")
    shown = check_hosts(hosts)
    recorded = bool(run.data.get("rollout_recorded"))
    if not recorded or again:
        line = run.data.get("history_line")
        if not isinstance(line, dict):  # this host wrote none (it stopped before taking its lock): from the record
            outcome = str(run.data.get("result") or "failed")
            line = run.history_entry("failed" if outcome == contract.CONTINUE else outcome, None, store.live(), host)
        failed = [h for h in shown if h["result"] == "failed"]
        if failed and line.get("result") != "failed":
            # This host's own run did not fail (a noop: another app host failed in its begin, so this one was never
            # begun again): the rollout did, and its record says where.
            first = failed[0]
            line = {**line, "result": "failed", "failed_phase": first["phase"],
                    "message": f"{first['host']} failed in phase {first['phase']}: {first['message']}"[:2000]}
        if not (recorded and store.replace_history(run.run_id, {**line, "hosts": shown})):
            store.append_history({**line, "hosts": shown})
        run.data["rollout_recorded"] = True
        run.save()
    return run.report()
