"""Issue 14, item 4: the audit of a run (actor, controller, commit, tag, run URL, approval), as the CLI collects it
and passes it to the playbooks (ansible-runner faked: the requests are only recorded)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_cli import invoke

from slipway import audit
from slipway_core import contract

ACTIONS = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_ACTOR": "alice",
    "GITHUB_TRIGGERING_ACTOR": "alice",
    "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",  # pragma: allowlist secret
    "GITHUB_REF_NAME": "v1.3.0",
    "GITHUB_REF_TYPE": "tag",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/ops",
    "GITHUB_RUN_ID": "42",
    "RUNNER_NAME": "gh-runner-7",
}


def test_under_github_actions(tmp_path: Path) -> None:
    found = audit.collect({**ACTIONS, "SLIPWAY_APPROVED_BY": "bob, carol"}, tmp_path, "production")

    assert found == {
        "env": "production",
        "actor": "alice",
        "controller": "gh-runner-7",
        "commit": ACTIONS["GITHUB_SHA"],
        "tag": "v1.3.0",
        "run_url": "https://github.com/acme/ops/actions/runs/42",
        "approval": "approved by bob, carol",
    }
    assert set(found) == set(contract.AUDIT_KEYS)


def test_a_rerun_names_both_and_a_branch_is_no_tag(tmp_path: Path) -> None:
    environ = {**ACTIONS, "GITHUB_TRIGGERING_ACTOR": "dave", "GITHUB_REF_TYPE": "branch", "GITHUB_REF_NAME": "main"}

    found = audit.collect(environ, tmp_path, "staging")

    assert found["actor"] == "alice (re-run by dave)"
    assert found["tag"] == ""
    assert found["approval"] == ""
    assert audit.collect({**environ, "SLIPWAY_RELEASE_TAG": "v1.3.1"}, tmp_path, "staging")["tag"] == "v1.3.1"


def test_production_without_a_recorded_approver_points_at_the_run(tmp_path: Path) -> None:
    found = audit.collect(ACTIONS, tmp_path, "production")
    assert found["approval"] == (
        "environment production's required reviewers: see https://github.com/acme/ops/actions/runs/42"
    )
    local = audit.collect({"USER": "erin"}, tmp_path, "production")
    assert local["approval"] == "none: run outside GitHub Actions"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout.strip()


def test_outside_actions_the_local_user_and_the_checkout(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "f").write_text("x")
    git(tmp_path, "add", "f")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-qm", "one")
    git(tmp_path, "tag", "v0.1.0")

    found = audit.collect({"USER": "erin", "GITHUB_ACTOR": "ignored"}, tmp_path, "local")

    assert (found["actor"], found["commit"], found["tag"]) == ("erin", git(tmp_path, "rev-parse", "HEAD"), "v0.1.0")
    assert found["run_url"] == ""
    assert found["controller"]
    assert audit.collect({"USER": "erin"}, tmp_path / "not-a-checkout", "local")["commit"] == ""


def test_extravars_are_clean_text() -> None:
    found = {key: "" for key in contract.AUDIT_KEYS}
    found["tag"] = "x{{ lookup('pipe', 'id') }}\n"
    extra = audit.extravars(found)
    assert extra["slipway_audit_tag"] == "x(( lookup('pipe', 'id') ))"
    assert "slipway_audit_env" not in extra  # the playbooks know their env


def test_every_run_passes_the_audit_to_the_playbook(project: Path) -> None:
    code, _out, err, runner = invoke(
        ["deploy", "--env", "demo", "--project-dir", str(project)], env={**ACTIONS, "SLIPWAY_APPROVED_BY": "bob"}
    )
    assert code == 0, err
    extravars = runner.calls[0].extravars
    assert extravars["slipway_audit_actor"] == "alice"
    assert extravars["slipway_audit_commit"] == ACTIONS["GITHUB_SHA"]
    assert extravars["slipway_audit_run_url"] == "https://github.com/acme/ops/actions/runs/42"
    assert extravars["slipway_audit_approval"] == "approved by bob"


@pytest.mark.parametrize("user", [{"USER": "zoe"}, {"LOGNAME": "zoe"}])
def test_the_local_user(tmp_path: Path, user: dict[str, str]) -> None:
    assert audit.collect(user, tmp_path, "local")["actor"] == "zoe"


def test_under_actions_the_commit_is_the_checked_out_one_not_github_sha(tmp_path: Path) -> None:
    """A workflow_run deploy checks out the commit CI tested; GITHUB_SHA is main's tip when the run started."""
    git(tmp_path, "init", "-q")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-q", "--allow-empty", "-m", "x")
    found = audit.collect(ACTIONS, tmp_path, "staging")
    assert found["commit"] == git(tmp_path, "rev-parse", "HEAD") != ACTIONS["GITHUB_SHA"]
