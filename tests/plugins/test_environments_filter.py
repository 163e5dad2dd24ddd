"""The environments filter (slipway.core.environments): which `-e env=` values preflight accepts."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from ansible.errors import AnsibleFilterError

PROJECT = Path(__file__).resolve().parents[2]
FILTER = PROJECT / "collections/ansible_collections/slipway/core/plugins/filter/environments.py"


def load_filter() -> ModuleType:
    spec = importlib.util.spec_from_file_location("slipway_environments_filter", FILTER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


environments = load_filter().environments


def test_the_projects_own_inventories() -> None:
    assert environments(PROJECT / "inventories") == ["local", "production", "staging"]


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
