"""Load one of the project collection's plugin files as a module (pytest puts this directory on sys.path)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

PROJECT = Path(__file__).resolve().parents[2]
FILTERS = PROJECT / "collections/ansible_collections/slipway/core/plugins/filter"


def load_filter(name: str) -> ModuleType:
    """The filter plugin file FILTERS/<name>.py, as module slipway_<name>_filter."""
    spec = importlib.util.spec_from_file_location(f"slipway_{name}_filter", FILTERS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
