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
    # The whole run (deploy, then the job that pushes the tag) is serialised: a newer run computes its tag only
    # after the previous run pushed its own, and never cancels a deploy in progress.
    assert workflow["concurrency"] == {"group": f"deploy-{env}", "cancel-in-progress": False}
    job = workflow["jobs"]["deploy"]
    assert job["environment"] == env
    assert job["permissions"]["contents"] == "read"
    assert not writes(job["permissions"])
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    assert "StrictHostKeyChecking" not in text
    assert "secrets.SSH_KNOWN_HOSTS" in text
    assert "~/.ssh/known_hosts" in text
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert any(r.strip().startswith(f"slipway deploy --env {env}") for r in runs)
    for job_name, any_job in workflow["jobs"].items():
        for script in (step["run"] for step in any_job["steps"] if "run" in step):
            assert "${{" not in script, f"{job_name}: inputs and secrets reach scripts through env:, never inline"


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


# --- Issue 14: the order CI -> staging deploy -> tag, write tokens, what CI runs, shared images, update automation.

ROOT = WORKFLOWS.parents[1]
CHECKOUT = "actions/checkout@"


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    found = job.get("steps", [])
    assert isinstance(found, list)
    return found


def step_index(job: dict[str, Any], needle: str) -> int:
    """The index of the first step whose `run` or `uses` contains `needle`."""
    for index, step in enumerate(steps(job)):
        if needle in str(step.get("run", "")) or needle in str(step.get("uses", "")):
            return index
    raise AssertionError(f"no step runs or uses {needle!r}")


def position(job: dict[str, Any], needle: str) -> tuple[int, int]:
    """(step index, offset in its script) of the first occurrence of `needle`: the order of commands also within
    one step."""
    index = step_index(job, needle)
    step = steps(job)[index]
    return index, str(step.get("run", "")).find(needle)


def needs(job: dict[str, Any]) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else list(value)


def writes(permissions: Any) -> bool:
    if permissions in ("write-all",):
        return True
    return isinstance(permissions, dict) and "write" in permissions.values()


def all_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path.name, name, job)
        for path in sorted(WORKFLOWS.glob("*.yml"))
        for name, job in load(path.name)["jobs"].items()
    ]


def test_staging_deploys_only_a_commit_whose_ci_passed() -> None:
    ci, staging = load("ci.yml"), load("deploy-staging.yml")
    assert staging["on"] == {"workflow_run": {"workflows": [ci["name"]], "types": ["completed"], "branches": ["main"]}}
    deploy = staging["jobs"]["deploy"]
    condition = " ".join(str(deploy["if"]).split())
    assert "github.event.workflow_run.conclusion == 'success'" in condition
    assert "github.event.workflow_run.event == 'push'" in condition  # not a pull request from a branch named main
    assert "github.event.workflow_run.head_repository.full_name == github.repository" in condition
    # The commit CI tested, not the tip of main when this run started (github.sha under workflow_run).
    checkout = steps(deploy)[step_index(deploy, CHECKOUT)]
    assert checkout["with"]["ref"] == "${{ github.event.workflow_run.head_sha }}"
    assert deploy["env"]["COMMIT"] == "${{ github.event.workflow_run.head_sha }}"
    assert "GITHUB_SHA" not in (WORKFLOWS / "deploy-staging.yml").read_text(encoding="utf-8")


def test_the_staging_tag_is_pushed_after_the_deploy_succeeded_with_its_record() -> None:
    jobs = load("deploy-staging.yml")["jobs"]
    deploy, tag = jobs["deploy"], jobs["tag"]
    # Order inside the deploy job: the next tag, the deploy, then the record of what was deployed.
    assert (
        step_index(deploy, "slipway release next --env staging")
        < step_index(deploy, "slipway deploy --env staging")
        < step_index(deploy, "slipway release record --env staging")
        < step_index(deploy, "actions/upload-artifact@")
    )
    # The tag is pushed by a separate job that runs only after the deploy job succeeded (no `if: always()`).
    assert needs(tag) == ["deploy"]
    assert "if" not in tag
    assert tag["permissions"] == {"contents": "write"}
    assert "environment" not in tag, "the tag job needs no deploy secret"
    assert position(tag, "actions/download-artifact@") < position(tag, "git/tags") < position(tag, "git/refs")
    assert "-F message=@" in steps(tag)[step_index(tag, "git/tags")]["run"], "an annotated tag: the record"


def test_production_promotes_only_a_recorded_matching_staging_tag() -> None:
    jobs = load("deploy-production.yml")["jobs"]
    deploy, release = jobs["deploy"], jobs["release"]
    assert (
        step_index(deploy, "slipway release next --env production")
        < step_index(deploy, "slipway release check --env production")
        < step_index(deploy, "slipway deploy --env production")
    )
    check = steps(deploy)[step_index(deploy, "slipway release check --env production")]
    assert '--tag "$STAGING_TAG"' in check["run"]
    assert needs(release) == ["deploy"]
    assert release["permissions"] == {"contents": "write"}
    assert "environment" not in release
    assert position(release, "git/tags") < position(release, "git/refs") < position(release, "gh release create")


def test_no_deploy_job_holds_a_write_token() -> None:
    """A job that touches hosts holds a read-only token, not kept in .git/config; the jobs that write (push a tag,
    create a release) check nothing out and run no slipway: they call the GitHub API with their own token."""
    seen_write = 0
    for workflow, name, job in all_jobs():
        where = f"{workflow}:{name}"
        uses = [str(step.get("uses", "")) for step in steps(job)]
        runs = " ".join(str(step.get("run", "")) for step in steps(job))
        for step in steps(job):
            if str(step.get("uses", "")).startswith(CHECKOUT):
                assert step.get("with", {}).get("persist-credentials") is False, f"{where}: persist-credentials"
        if "environment" in job or "slipway deploy" in runs:
            assert job.get("permissions", {}).get("contents") == "read", f"{where}: a deploy job with write access"
            assert not writes(job.get("permissions")), f"{where}: a deploy job with write access"
        if writes(job.get("permissions")):
            seen_write += 1
            assert "environment" not in job, where
            assert not any(u.startswith(CHECKOUT) for u in uses), f"{where}: a write job checks nothing out"
            assert "slipway" not in runs, where
            assert needs(job) == ["deploy"], f"{where}: writes only after the deploy"
    for workflow in ("deploy-staging.yml", "deploy-production.yml", "ci.yml"):
        assert not writes(load(workflow)["permissions"]), workflow
    assert seen_write == 2  # the staging tag, the production tag and release


def test_the_write_check_sees_write_permissions() -> None:
    assert writes({"contents": "write"})
    assert writes("write-all")
    assert not writes({"contents": "read"})


def pytest_roots() -> list[str]:
    """Every directory under tests/ that holds test files (pytest's roots as `make unit` runs them)."""
    return sorted({p.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("tests/*/test_*.py")})


def make_recipe(target: str) -> str:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]


def pytest_paths(ci: dict[str, Any]) -> list[str]:
    """The paths every pytest command of ci.yml runs, `make <target>` expanded through the Makefile."""
    scripts = [str(step.get("run", "")) for job in ci["jobs"].values() for step in steps(job)]
    scripts += [make_recipe(m) for s in scripts for m in re.findall(r"\bmake (\w+)", s)]
    paths: list[str] = []
    for script in scripts:
        for command in re.findall(r"\bpytest ([^\n]*)", script):
            paths += [w for w in command.split() if not w.startswith("-") and not w.startswith("$")]
    return paths


def test_ci_runs_every_pytest_root() -> None:
    roots = pytest_roots()
    assert {"tests/unit", "tests/plugins", "tests/playbooks", "tests/sample_service", "tests/integration"} <= set(roots)
    paths = pytest_paths(load("ci.yml"))
    for root in roots:
        assert any(root == p or root.startswith(p.rstrip("/") + "/") for p in paths), f"CI never runs {root}"


def test_ci_runs_every_molecule_scenario() -> None:
    scenarios = sorted(p.parent.name for p in ROOT.glob("molecule/*/molecule.yml"))
    assert "full_stack" in scenarios
    molecule = load("ci.yml")["jobs"]["molecule"]
    listed = molecule["strategy"]["matrix"]["scenario"]
    assert isinstance(listed, list), "a literal list, so that this test sees what CI runs"
    assert sorted(listed) == scenarios, "every molecule/<scenario>/molecule.yml needs its CI entry, and no more"
    assert molecule["strategy"]["fail-fast"] is False
    assert 'molecule test -s "$SCENARIO"' in steps(molecule)[-1]["run"]


def test_test_images_are_built_once_and_shared() -> None:
    jobs = load("ci.yml")["jobs"]
    builders = sorted(
        {
            name
            for name, job in jobs.items()
            for step in steps(job)
            if "build_sample.sh" in str(step.get("run", ""))
            or re.search(r"prepare\.sh(?![^\n]*--no-images)", str(step.get("run", "")))
        }
    )
    assert builders == ["images"], f"the images are built in one job only, not in {builders}"
    images = jobs["images"]
    assert step_index(images, "prepare.sh") < step_index(images, "build_sample.sh") < step_index(images, "docker save")
    upload = steps(images)[step_index(images, "actions/upload-artifact@")]
    artifact = upload["with"]["name"]
    for name in ("molecule", "tests"):
        job = jobs[name]
        assert "images" in needs(job), name
        download = steps(job)[step_index(job, "actions/download-artifact@")]
        assert download["with"]["name"] == artifact, name
        assert step_index(job, "actions/download-artifact@") < step_index(job, "docker load"), name


def test_ci_runs_what_make_test_runs() -> None:
    jobs = load("ci.yml")["jobs"]
    runs = {name: " ".join(str(s.get("run", "")) for s in steps(job)) for name, job in jobs.items()}
    assert "make lint" in runs["lint"]
    assert "make unit" in runs["tests"]
    assert "--test-packages" in runs["tests"], "the Debian packages `make test` installs (PostgreSQL, Redis, ...)"
    assert "pytest tests " in make_recipe("unit")


def test_setup_python_caches_on_the_dependency_file() -> None:
    seen = 0
    for workflow, name, job in all_jobs():
        for step in steps(job):
            if str(step.get("uses", "")).startswith("actions/setup-python@"):
                seen += 1
                assert step["with"].get("cache") == "pip", f"{workflow}:{name}"
                assert step["with"].get("cache-dependency-path") == "pyproject.toml", f"{workflow}:{name}"
    assert seen >= 5


def test_dependabot_updates_the_pinned_actions_and_pip_pins() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    assert config["version"] == 2
    updates = {(u["package-ecosystem"], u["directory"]) for u in config["updates"]}
    assert ("github-actions", "/") in updates
    assert ("pip", "/") in updates  # pyproject.toml's pins
    assert ("pip", "/examples/notes-api") in updates  # the sample service's requirements.txt
    for update in config["updates"]:
        assert update["schedule"]["interval"] in {"daily", "weekly", "monthly"}


@pytest.mark.parametrize(("name", "env"), [("deploy-production.yml", "production"), ("deploy-staging.yml", "staging")])
def test_the_deploy_hands_the_audit_its_tag_and_approval(name: str, env: str) -> None:
    """The history records the tag the workflow releases (SLIPWAY_RELEASE_TAG) and, for production, who approved
    the run (SLIPWAY_APPROVED_BY, from the run's approvals, before the deploy; src/slipway/audit.py)."""
    deploy = load(name)["jobs"]["deploy"]
    step = steps(deploy)[step_index(deploy, f"slipway deploy --env {env}")]
    assert step["env"]["SLIPWAY_RELEASE_TAG"] == "${{ steps.tag.outputs.tag }}"
    if env == "production":
        assert position(deploy, "/approvals") < position(deploy, "slipway deploy --env production")
        assert "SLIPWAY_APPROVED_BY=" in steps(deploy)[step_index(deploy, "/approvals")]["run"]
        assert deploy["permissions"] == {"contents": "read", "actions": "read"}
