"""Molecule's create and destroy steps are molecule/shared's (lighter than the docker driver's own): every scenario
uses them, and every platform key a scenario sets is one the shared create step reads (it refuses any other at run
time; this finds it before a scenario starts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / ".config" / "molecule" / "config.yml"
SCENARIOS = sorted(p.parent for p in ROOT.glob("molecule/*/molecule.yml"))


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def platforms(scenario: Path) -> list[dict[str, Any]]:
    """The scenario's platforms: its own, or the shared config's (Molecule replaces the list, it does not merge it)."""
    own = load(scenario / "molecule.yml").get("platforms")
    found = own if own is not None else load(BASE)["platforms"]
    assert isinstance(found, list) and found, scenario
    return found


def create_keys() -> set[str]:
    plays = load(ROOT / "molecule" / "shared" / "create.yml")
    keys = plays[0]["vars"]["__create_keys"]
    assert isinstance(keys, list) and "name" in keys
    return set(keys)


def test_scenarios_are_found() -> None:
    assert len(SCENARIOS) >= 5, SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_every_scenario_creates_and_destroys_with_the_shared_steps(scenario: Path) -> None:
    base = load(BASE)["provisioner"]["playbooks"]
    assert base["create"] == "../shared/create.yml"
    assert base["destroy"] == "../shared/destroy.yml"
    own = (load(scenario / "molecule.yml").get("provisioner") or {}).get("playbooks") or {}
    assert "create" not in own and "destroy" not in own, f"{scenario.name} overrides the shared create or destroy"
    for step in ("create", "destroy"):
        assert (scenario / base[step]).resolve().is_file(), step


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_every_platform_key_is_one_the_shared_create_reads(scenario: Path) -> None:
    known = create_keys()
    for platform in platforms(scenario):
        unread = sorted(set(platform) - known)
        assert unread == [], f"{scenario.name}/{platform['name']}: molecule/shared/create.yml does not read {unread}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_every_host_s_volumes_go_with_it(scenario: Path) -> None:
    """The shared destroy removes every host with `docker rm --volumes`: a platform that keeps its volumes (the
    docker driver's default) would lose them there, so none may ask for it."""
    for platform in platforms(scenario):
        assert platform.get("keep_volumes") is False, f"{scenario.name}/{platform['name']}: set keep_volumes: false"

