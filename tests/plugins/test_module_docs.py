"""Every module of the collection documents itself in YAML that parses (ansible-doc and ansible-lint read it; a
plain scalar with ': ' or ' #' in it breaks the page without failing the lint)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from plugin_loader import PROJECT

MODULES = sorted((PROJECT / "collections/ansible_collections/slipway/core/plugins/modules").glob("*.py"))


def blocks(path: Path) -> dict[str, str]:
    found = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
                    found[target.id] = str(node.value.value)
    return found


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_the_documentation_parses(path: Path) -> None:
    found = blocks(path)
    assert set(found) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    doc = yaml.safe_load(found["DOCUMENTATION"])
    assert doc["module"] == path.stem
    assert all(isinstance(line, str) for line in doc["description"])
    for name in ("EXAMPLES", "RETURN"):
        yaml.safe_load(found[name])
