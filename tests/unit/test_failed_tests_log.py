"""molecule/scenario_tools.record_failure: what `make test` prints for each failed scenario test (Molecule wraps
pytest's own summary lines, so a CI showing the end of the log would not name the test)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "molecule"))
scenario_tools = importlib.import_module("scenario_tools")


def test_each_failure_is_appended_with_its_scenario_id_phase_and_the_end_of_its_report(tmp_path: Path) -> None:
    log = tmp_path / "cache" / "failed-tests.log"
    report = "\n".join(f"line {n}" for n in range(1, 41)) + "\nE   AssertionError: 3 requests failed\n"
    scenario_tools.record_failure("full_stack", "tests/test_a.py::test_one[ansible://h]", "call", report, path=log)
    scenario_tools.record_failure("cluster", "tests/test_b.py::test_two", "setup", "E   TimeoutError", path=log)

    text = log.read_text(encoding="utf-8").splitlines()
    assert text[0] == "FAILED full_stack: tests/test_a.py::test_one[ansible://h] (call)"
    first = text[1 : text.index("FAILED cluster: tests/test_b.py::test_two (setup)")]
    assert len(first) == 25
    assert first[-1] == "    E   AssertionError: 3 requests failed"
    assert "    line 1" not in first and "    line 40" in first
    assert text[-1] == "    E   TimeoutError"
