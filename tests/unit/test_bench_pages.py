"""The benches' page of figures (bench/results.md): each bench's section survives the other's rerun; and the
engine-restart bench's reading of HAProxy's server state."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

# The benches are scripts in bench/ (one imports the other by name), loaded here as they run.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
rollout_bench = importlib.import_module("rollout_bench")
engine_restart_bench = importlib.import_module("engine_restart_bench")


def test_a_section_survives_a_rerun_of_the_page_and_is_replaced_by_its_own(tmp_path: Path) -> None:
    page = tmp_path / "results.md"
    rollout_bench.write_results(page, "# Rollout\n\nrun 1\n")
    rollout_bench.write_results(page, "engine: 5 failed", "engine_restart")
    rollout_bench.write_results(page, "stop: 0 failed", "engine_restart_stop6")

    rollout_bench.write_results(page, "# Rollout\n\nrun 2\n")
    rollout_bench.write_results(page, "engine: 0 failed", "engine_restart")

    text = page.read_text()
    assert text.startswith("# Rollout\n\nrun 2\n")
    assert "run 1" not in text and "5 failed" not in text
    assert text.count("<!-- section: engine_restart -->") == 1
    assert text.index("engine: 0 failed") < text.index("stop: 0 failed")  # sections in a stable order


def test_the_live_server_serves_only_when_up_without_a_traffic_flag() -> None:
    live = "notes-api-green"
    assert not engine_restart_bench.live_not_up(f"notes-api-blue=1/op0/adm8 {live}=2/op2/adm0", live)
    assert not engine_restart_bench.live_not_up(f"{live}=2/op2/adm4", live)  # config maint left after `ready`
    assert engine_restart_bench.live_not_up(f"{live}=-/op2/adm32", live)  # resolution maint
    assert engine_restart_bench.live_not_up(f"{live}=2/op0/adm0", live)  # down
    assert engine_restart_bench.live_not_up("notes-api-blue=1/op2/adm0", live)  # not in the backend
