"""`slipway-release targets --dir DIR` (scrape_files.py): the monitoring host's file_sd files after a cluster
rollout, every app host and service in one call; atomic, rewritten only when they change; bad input or a missing
directory writes nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from slipway_core import contract

PLAN = [{"service": "notes-api", "colour": "green", "version": "v2.0.0",
         "hosts": {"app-1": ["10.0.1.11:20008"], "app-2": ["10.0.1.12:20008"]}},
        {"service": "worker-svc", "colour": "blue", "version": "v1.0.0", "hosts": {"app-2": ["10.0.1.12:20016"]}}]


def files(directory: Path) -> dict[str, Any]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.iterdir())}


def test_one_call_writes_each_service_s_file_per_app_host_and_only_what_changed(release: Any, tmp_path: Path) -> None:
    targets = tmp_path / "file_sd"
    targets.mkdir()
    (targets / "other.app-9.json").write_text("[]\n", encoding="utf-8")  # another service's: left as it is
    code, answer = release("targets", "--dir", str(targets), stdin={"plan": PLAN})
    assert (code, answer) == (contract.EXIT_OK, {"written": ["notes-api.app-1.json", "notes-api.app-2.json",
                                                             "worker-svc.app-2.json"], "unchanged": [],
                                         "removed": []})
    found = files(targets)
    assert found["notes-api.app-2.json"] == [{"targets": ["10.0.1.12:20008"], "labels": {
        "service": "notes-api", "colour": "green", "host": "app-2", "version": "v2.0.0"}}]
    assert found["other.app-9.json"] == []
    assert oct(os.stat(targets / "notes-api.app-1.json").st_mode & 0o777) == "0o644"
    # The next rollout of one service: only its files change.
    moved = [{**PLAN[0], "colour": "blue", "version": "v1.0.0"}, PLAN[1]]
    code, answer = release("targets", "--dir", str(targets), stdin={"plan": moved})
    assert answer == {"written": ["notes-api.app-1.json", "notes-api.app-2.json"],
                      "unchanged": ["worker-svc.app-2.json"], "removed": []}
    assert files(targets)["notes-api.app-1.json"][0]["labels"]["colour"] == "blue"
    assert not [p for p in os.listdir(targets) if p.startswith(".")]  # no temporary file left


def test_bad_input_or_a_missing_directory_writes_nothing(release: Any, tmp_path: Path) -> None:
    targets = tmp_path / "file_sd"
    targets.mkdir()
    bad = [PLAN[0], {**PLAN[1], "hosts": {"app-2": ["app-2:80"]}}]
    code, answer = release("targets", "--dir", str(targets), stdin={"plan": bad})
    assert code == contract.EXIT_USAGE and "scrape target 'app-2:80'" in answer["error"], answer
    code, answer = release("targets", "--dir", str(targets), stdin="not json")
    assert code == contract.EXIT_USAGE and "stdin is not JSON" in answer["error"], answer
    assert os.listdir(targets) == []
    code, answer = release("targets", "--dir", str(tmp_path / "absent"), stdin={"plan": PLAN})
    assert code == contract.EXIT_FAILED and "provision Prometheus on this host" in answer["error"], answer
    assert not (tmp_path / "absent").exists()


def test_a_host_the_plan_no_longer_names_loses_its_file_and_nothing_else_does(release: Any, tmp_path: Path) -> None:
    """app-2 left the inventory (docs/runbook.md): the next rollout of notes-api removes notes-api.app-2.json, so
    Prometheus stops scraping a host that is gone. The one-VM file, other services' files and files that are no
    app host's are kept."""
    targets = tmp_path / "file_sd"
    targets.mkdir()
    assert release("targets", "--dir", str(targets), stdin={"plan": PLAN})[0] == contract.EXIT_OK
    kept = ["notes-api.json", "other.app-2.json", "notes-api.app-2.json.bak", "notes-api-old.app-2.json"]
    for name in kept:
        (targets / name).write_text("[]\n", encoding="utf-8")
    one_host = [{**PLAN[0], "hosts": {"app-1": ["10.0.1.11:20008"]}}]
    code, answer = release("targets", "--dir", str(targets), stdin={"plan": one_host})
    assert (code, answer) == (contract.EXIT_OK, {"written": [], "unchanged": ["notes-api.app-1.json"],
                                                 "removed": ["notes-api.app-2.json"]})
    assert sorted(os.listdir(targets)) == sorted([*kept, "notes-api.app-1.json", "worker-svc.app-2.json"])
