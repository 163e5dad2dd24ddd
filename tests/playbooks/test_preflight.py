"""The playbooks refuse a missing or unknown environment before touching any host (real ansible-playbook runs)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOKS = sorted(p.name for p in (PROJECT / "playbooks").glob("*.yml") if p.name != "preflight.yml")


def run_playbook(playbook: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.run(
        ["ansible-playbook", f"playbooks/{playbook}", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_unknown_env_fails_fast_naming_the_known_ones(playbook: str) -> None:
    result = run_playbook(playbook, "-e", "env=nosuch")
    assert result.returncode != 0
    assert "environment 'nosuch' is unknown: use one of: demo_cluster, local, production, staging" in result.stdout
    # Only the localhost check ran: no play reached an environment's hosts.
    assert "PLAY RECAP" in result.stdout
    recap = result.stdout.split("PLAY RECAP", 1)[1]
    assert "localhost" in recap
    assert "staging-app" not in recap and "production-1" not in recap and "slipway-local" not in recap


def test_missing_env_fails_fast() -> None:
    result = run_playbook("infra.yml")
    assert result.returncode != 0
    # YAML doubles the quote
    assert "environment '''' is unknown: use one of: demo_cluster, local, production, staging" in result.stdout


def test_known_env_targets_only_its_own_hosts() -> None:
    result = run_playbook("infra.yml", "-e", "env=production", "--list-hosts")
    assert result.returncode == 0, result.stderr
    assert "production-1" in result.stdout
    assert "staging-app-1" not in result.stdout


def test_env_variables_stay_in_their_environment() -> None:
    result = subprocess.run(
        ["ansible-inventory", "--host", "staging-app-1"], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    assert '"slipway_env": "staging"' in result.stdout
    assert "production" not in result.stdout


@pytest.mark.parametrize(
    ("playbook", "args", "message"),
    [
        ("deploy.yml", ["-e", "service=nosuch"], "service ''nosuch'' is not in the services registry of staging"),
        ("deploy.yml", ["-e", "version=v9"], "a version (''v9'') was given without a service"),
        ("deploy.yml", ["-e", "service=lark-service", "-e", "version=v9/x"], "version ''v9/x'' is not an image tag"),
        ("rollback.yml", [], "a rollback needs a service: one of: lark-service"),
        ("rollback.yml", ["-e", "service=lark-service", "-e", "slipway_run_id=a;b"], "run id ''a;b'' is not valid"),
        ("status.yml", ["-e", "service=nope"], "service ''nope'' is not in the services registry of staging"),
        ("history.yml", ["-e", "service=a;b"], "service ''a;b'' is not a service name"),
        ("unlock.yml", ["-e", "service=nope"], "service ''nope'' is not in the services registry of staging"),
    ],
)
def test_bad_request_is_refused_on_the_controller(playbook: str, args: list[str], message: str) -> None:
    """staging's registry holds secrets from a vault this machine does not have: the check reads only its names."""
    result = run_playbook(playbook, "-e", "env=staging", *args)
    assert result.returncode != 0
    assert message in result.stdout  # in the YAML result format: ' doubled
    recap = result.stdout.split("PLAY RECAP", 1)[1]
    assert "staging-app" not in recap


@pytest.mark.parametrize("tags", ["edge_proxy", "postgresql,redis,edge_proxy,prometheus"])
def test_a_run_limited_by_tags_still_checks_the_request_first(tags: str) -> None:
    """docs/runbook.md's `infra.yml --tags ...` (add a service, scale one): the preflight runs whatever the tags."""
    result = run_playbook("infra.yml", "-e", "env=nosuch", "--tags", tags)
    assert result.returncode != 0
    assert "environment 'nosuch' is unknown: use one of: demo_cluster, local, production, staging" in result.stdout
