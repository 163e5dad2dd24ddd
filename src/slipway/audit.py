"""Who asks for a run and from where: the audit that every history line and every lock on the hosts keeps.

Under GitHub Actions (GITHUB_ACTIONS=true):
- actor: GITHUB_ACTOR, and GITHUB_TRIGGERING_ACTOR when someone else re-ran the workflow;
- commit: the checked-out commit (`git rev-parse HEAD`: a workflow_run deploy checks out the commit CI tested and
  production the staging tag's, while GITHUB_SHA names the branch tip when the run started), else GITHUB_SHA;
- tag: SLIPWAY_RELEASE_TAG (the tag the workflow releases), else GITHUB_REF_NAME when the workflow runs for a tag;
- run_url: GITHUB_SERVER_URL/GITHUB_REPOSITORY/actions/runs/GITHUB_RUN_ID;
- controller: RUNNER_NAME;
- approval: SLIPWAY_APPROVED_BY, which the production workflow sets from the deployment's reviewers (GitHub does
  not expose an environment's approval to the job as a variable; docs/runbook.md shows the step). Unset for
  production, the record points at the run, where GitHub shows who approved it.
Elsewhere: the local user (USER, LOGNAME), this machine's name, `git rev-parse HEAD` and a tag at HEAD when the
project is a git checkout; approval for production: "none: run outside GitHub Actions".

The values travel as extra variables `slipway_audit_<key>` (contract.AUDIT_KEYS but env, which the playbooks
know); the app_release role hands them to the host program (`--audit`). They are cleaned (contract.clean_text):
no braces, so Ansible never templates them.
"""

from __future__ import annotations

import getpass
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from slipway.report import run_url
from slipway_core import contract

PRODUCTION = "production"
APPROVED_BY = "SLIPWAY_APPROVED_BY"
RELEASE_TAG = "SLIPWAY_RELEASE_TAG"


def _git(project: Path, *args: str) -> str:
    """One line of git's answer in `project`, or "" (not a checkout, no git, no answer)."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed git subcommands
            ["git", "-C", str(project), *args],  # noqa: S607 - git from PATH, as tags.git_tags does
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = done.stdout.split() if done.returncode == 0 else []
    return lines[0] if lines else ""


def _local_user(environ: Mapping[str, str]) -> str:
    for name in ("USER", "LOGNAME"):
        if environ.get(name):
            return environ[name]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid
        return "unknown"


def collect(environ: Mapping[str, str], project: Path, env: str) -> dict[str, str]:
    """The audit of a run of environment `env` from `project` (contract.AUDIT_KEYS, clean text)."""
    url = run_url(environ)
    if environ.get("GITHUB_ACTIONS") == "true":
        actor = environ.get("GITHUB_ACTOR", "") or "unknown"
        again = environ.get("GITHUB_TRIGGERING_ACTOR", "")
        if again and again != actor:
            actor = f"{actor} (re-run by {again})"
        commit = _git(project, "rev-parse", "--verify", "-q", "HEAD") or environ.get("GITHUB_SHA", "")
        on_tag = environ.get("GITHUB_REF_TYPE") == "tag"
        tag = environ.get(RELEASE_TAG) or (environ.get("GITHUB_REF_NAME", "") if on_tag else "")
        controller = environ.get("RUNNER_NAME") or socket.gethostname()
        unrecorded = f"environment {PRODUCTION}'s required reviewers: see {url or 'the workflow run'}"
    else:
        actor = _local_user(environ)
        commit = _git(project, "rev-parse", "--verify", "-q", "HEAD")
        tag = environ.get(RELEASE_TAG) or (_git(project, "tag", "--points-at", "HEAD") if commit else "")
        controller = socket.gethostname()
        unrecorded = "none: run outside GitHub Actions"
    approval = environ.get(APPROVED_BY, "")
    if approval:
        approval = f"approved by {approval}"
    elif env == PRODUCTION:
        approval = unrecorded
    found = {"env": env, "actor": actor, "controller": controller, "commit": commit, "tag": tag, "run_url": url,
             "approval": approval}
    return contract.audit(found)


def extravars(found: Mapping[str, str]) -> dict[str, str]:
    """The audit as the playbooks take it: `slipway_audit_<key>` (env is the playbooks' own `env`)."""
    return {f"slipway_audit_{key}": contract.clean_text(found.get(key)) for key in contract.AUDIT_KEYS if key != "env"}
