"""The GitHub Actions workflows: every action pinned to a commit SHA, deploy jobs serialised per environment,
least-privilege permissions, host keys pinned from a secret, and untrusted inputs kept out of shell scripts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def all_uses(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [str(node["uses"])] if "uses" in node else []
        return found + [u for v in node.values() for u in all_uses(v)]
    if isinstance(node, list):
        return [u for v in node for u in all_uses(v)]
    return []


def test_the_three_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS.glob("*.yml")} >= {"ci.yml", "deploy-staging.yml", "deploy-production.yml"}


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_sha(path: Path) -> None:
    uses = all_uses(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert uses, "no actions found: the check would prove nothing"
    for ref in uses:
        assert PINNED.match(ref), f"{path.name}: {ref} is not pinned to a 40-hex commit SHA"


def test_pin_check_refuses_tags() -> None:
    assert not PINNED.match("actions/checkout@v4")
    assert not PINNED.match("actions/checkout@11bd719")


@pytest.mark.parametrize(("name", "env"), [("deploy-production.yml", "production"), ("deploy-staging.yml", "staging")])
def test_deploy_job_is_bound_and_serialised(name: str, env: str) -> None:
    workflow = load(name)
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    assert job["environment"] == env
    assert job["concurrency"] == {"group": f"deploy-{env}", "cancel-in-progress": False}
    assert job["permissions"] == {"contents": "write"}
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    assert "StrictHostKeyChecking" not in text
    assert "secrets.SSH_KNOWN_HOSTS" in text
    assert "~/.ssh/known_hosts" in text
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert any(r.strip().startswith(f"slipway deploy --env {env}") for r in runs)
    for script in runs:
        assert "${{" not in script, "inputs and secrets reach scripts through env:, never inline"


def test_production_is_manual_with_a_typed_confirmation() -> None:
    workflow = load("deploy-production.yml")
    trigger = workflow["on"]
    assert list(trigger) == ["workflow_dispatch"]
    assert set(trigger["workflow_dispatch"]["inputs"]) == {"tag", "confirm"}
    text = (WORKFLOWS / "deploy-production.yml").read_text(encoding="utf-8")
    assert '"$CONFIRM" != "deploy $STAGING_TAG to production"' in text
    assert "slipway release next --env production" in text
    assert "gh release create" in text


def test_ci_covers_lint_tests_secrets_and_molecule() -> None:
    workflow = load("ci.yml")
    assert set(workflow["on"]) == {"pull_request", "push"}
    assert workflow["permissions"] == {"contents": "read"}
    text = (WORKFLOWS / "ci.yml").read_text(encoding="utf-8")
    for needle in ("make lint", "--cov-fail-under=90", "molecule test"):
        assert needle in text
    # The lint job runs the Makefile's lint target, the same one `make test` runs locally.
    makefile = (WORKFLOWS.parents[1] / "Makefile").read_text(encoding="utf-8")
    lint_recipe = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    for tool in ("ruff check", "mypy", "yamllint", "ansible-lint", "actionlint", "detect-secrets"):
        assert tool in lint_recipe
    assert "matrix" in workflow["jobs"]["molecule"]["strategy"]
