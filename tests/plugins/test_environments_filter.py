"""The environments filter (slipway.core.environments): which `-e env=` values preflight accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import PROJECT, load_filter

environments = load_filter("environments").environments


def test_the_projects_own_inventories() -> None:
    assert environments(PROJECT / "inventories") == ["demo_cluster", "local", "production", "staging"]


def test_only_directories_with_a_hosts_file_count(tmp_path: Path) -> None:
    for name in ("zeta", "alpha", "empty", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "zeta" / "hosts.yml").write_text("all: {}\n", encoding="utf-8")
    (tmp_path / "alpha" / "hosts.yml").write_text("all: {}\n", encoding="utf-8")
    (tmp_path / "notes" / "hosts.yaml").write_text("all: {}\n", encoding="utf-8")  # not hosts.yml
    (tmp_path / "hosts.yml").write_text("all: {}\n", encoding="utf-8")  # a file, not an environment
    assert environments(str(tmp_path)) == ["alpha", "zeta"]


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(AnsibleFilterError, match="nowhere is not a directory"):
        environments(tmp_path / "nowhere")
