"""A bad app_release_disk_margin_mb is refused before any host is touched (real ansible-playbook runs of deploy.yml
against the local environment, whose host is pointed at a container that does not exist behind a Docker socket that
does not exist: a value that passed reaches the role's first host task, the lock, which then cannot connect)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from bad_input_cases import SAFE_ENVIRON

PROJECT = Path(__file__).resolve().parents[2]
FIRST_HOST_TASK = "TASK [app_release : Lock | Take the deploy lock"


def deploy(margin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ansible-playbook", "playbooks/deploy.yml", "-e", "env=local", "-e", "service=notes-api",
         "-e", f'{{"app_release_disk_margin_mb": {margin}}}'],
        cwd=PROJECT, capture_output=True, text=True, env={**os.environ, **SAFE_ENVIRON}, timeout=180, check=False,
    )


@pytest.mark.parametrize(
    ("margin", "message"),
    [
        ('"lots"', "app_release_disk_margin_mb"),  # argument_specs: not an int
        ("-1", "app_release_disk_margin_mb must be a whole number of MiB, 0 or more, not -1"),
    ],
    ids=["word", "negative"],
)
def test_a_bad_margin_is_refused_before_any_host_task(margin: str, message: str) -> None:
    result = deploy(margin)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]
    assert FIRST_HOST_TASK not in result.stdout, result.stdout[-3000:]


def test_a_good_margin_goes_on_to_the_host() -> None:
    result = deploy("0")
    assert result.returncode != 0  # the host does not exist
    assert FIRST_HOST_TASK in result.stdout, result.stdout[-3000:]
    assert "must be a whole number" not in result.stdout
