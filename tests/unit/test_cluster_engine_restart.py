"""bench/cluster_engine_restart.py's reading of the edge (HAProxy's `show servers state`), its windows and table."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
bench = importlib.import_module("cluster_engine_restart")
rollout_bench = importlib.import_module("rollout_bench")

STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight
3 be_notes-api 1 notes-api-blue.1 10.214.0.11 0 1 1
3 be_notes-api 2 notes-api-blue.2 10.214.0.12 0 1 1
3 be_notes-api 3 notes-api-green.1 10.214.0.11 2 0 1
3 be_notes-api 4 notes-api-green.2 10.214.0.12 2 0 1
"""


def test_the_restarted_host_s_servers_are_those_with_its_index() -> None:
    assert bench.host_index("slipway-dc-app-2", ["slipway-dc-app-1", "slipway-dc-app-2"]) == 2
    states = bench.server_states(STATE, "2")
    assert states == {"be_notes-api/notes-api-blue.2": "0", "be_notes-api/notes-api-green.2": "2"}


def test_only_the_servers_up_at_the_start_are_watched() -> None:
    watched = {s for s, op in bench.server_states(STATE, "2").items() if op == bench.UP}
    assert watched == {"be_notes-api/notes-api-green.2"}
    assert not bench.not_up(bench.server_states(STATE, "2"), watched)  # the kept blue is down: not watched
    down = STATE.replace("notes-api-green.2 10.214.0.12 2", "notes-api-green.2 10.214.0.12 0")
    assert bench.not_up(bench.server_states(down, "2"), watched)
    assert bench.not_up({}, watched)  # gone from the answer (the socket did not answer) counts as not UP


def test_seconds_not_up_adds_each_bad_sample_until_the_next() -> None:
    samples = [(0.0, False), (1.0, True), (1.5, True), (2.0, False), (5.0, True)]
    assert bench.seconds_not_up(samples, 0.0, 6.0) == 2.0  # 1.0-2.0, then 5.0 until the window's end
    assert abs(bench.seconds_not_up(samples, 1.2, 1.8) - 0.3) < 1e-9  # from 1.5 (the first inside) to 1.8


def test_a_window_counts_what_happened_in_it_and_the_table_adds_up() -> None:
    stats = rollout_bench.Stats()
    stats.add(0.01, 200)
    before = bench.counts(stats)
    stats.add(0.01, 200)
    stats.add(0.01, None, "ConnectionRefusedError")
    stats.add(0.01, 503)
    window = bench.difference(before, bench.counts(stats))
    assert (window.requests, window.failed) == (3, 2)
    assert window.errors == {"ConnectionRefusedError": 1, "HTTP 503": 1}
    window.name = "restart 1"
    lines = bench.table([bench.Window("quiet", 10), window])
    assert lines[2].startswith("| quiet | 10 | 0 | - |")
    assert "ConnectionRefusedError 1, HTTP 503 1" in lines[3]
    assert lines[-1].startswith("| **all** | 13 | 2 |")
