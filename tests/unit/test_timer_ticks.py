"""molecule/scenario_tools.tick_of: which timer tick a scheduled job's run belongs to, as the scenarios' tick counts
(full_stack's and cluster's) read it."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "molecule"))
scenario_tools = importlib.import_module("scenario_tools")


@pytest.mark.parametrize(
    ("started", "tick"),
    [
        (30.2, 30),  # on time
        (38.0, 30),  # 8 s late on a starved host: still its own tick (rounding to the nearest gave 45)
        (44.4, 30),  # as late as a run can be and still be this tick's
        (29.6, 30),  # the record's clock a little behind the host's
        (44.6, 45),  # the next tick's run, a little early by the same clocks
    ],
)
def test_a_run_counts_for_the_last_tick_at_or_before_its_start(started: float, tick: int) -> None:
    assert scenario_tools.tick_of(started, 15) == tick


def test_the_runs_counted_are_the_timer_runs_of_the_ticks_asked() -> None:
    runs = [{"trigger": "timer", "started": t} for t in (14.6, 29.6, 44.4, 59.6, 60.2)] + [
        {"trigger": "manual", "started": 31.0}]
    counted = [r["started"] for r in runs if scenario_tools.counted_run(r, 15, 45, 15)]
    assert counted == [14.6, 29.6, 44.4]  # 59.6 is the next tick's (60), 60.2 past it, the manual run no tick's
