"""`slipway` end to end against the local host container (real ansible-runner, real Docker, PostgreSQL, Redis,
HAProxy and the sample service): deploy, roll back, a failing deploy, bad input, and no secret in any output.

Needs a Docker engine and the images `make prepare` builds. The tests start their own fresh host container
(scripts/local-host.sh with SLIPWAY_LOCAL_HOST=slipway-it, HTTP on 127.0.0.1:18080), never the demo's
`slipway-local`, and remove it afterwards. Takes a few minutes (it provisions the host).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
HOST = "slipway-it"
HTTP_PORT = "18080"
PROXY = f"http://127.0.0.1:{HTTP_PORT}"
# The inventory's host is still called slipway-local; SLIPWAY_LOCAL_HOST points it at this test's container.
HOST_ENV = {"SLIPWAY_LOCAL_HOST": HOST, "SLIPWAY_LOCAL_HTTP_PORT": HTTP_PORT}
STATE = "/var/lib/slipway/services/notes-api/state.json"

pytestmark = pytest.mark.integration


def docker_answers() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True, check=False
    ).returncode == 0


def local_host_script(action: str) -> None:
    done = subprocess.run(
        ["scripts/local-host.sh", action],
        cwd=PROJECT,
        env={**os.environ, **HOST_ENV},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def local_host() -> Iterator[str]:
    """A fresh host, provisioned, serving the inventory's version (v1.0.0) of notes-api."""
    if not docker_answers():
        pytest.skip("no Docker engine answers (run tests/harness/prepare.sh)")
    local_host_script("down")  # whatever an earlier, interrupted run left
    local_host_script("up")
    try:
        local_host_script("load-images")
        provision = slipway("provision", "--env", "local")
        assert provision.returncode == 0, provision.stdout[-3000:] + provision.stderr[-3000:]
        base = slipway("deploy", "--env", "local")
        assert base.returncode == 0, base.stdout[-3000:] + base.stderr[-3000:]
        yield HOST
    finally:
        local_host_script("down")


def slipway(*args: str, tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "SLIPWAY_"))} | HOST_ENV
    if tmp is not None:
        env["GITHUB_STEP_SUMMARY"] = str(tmp / "summary.md")
        env["GITHUB_OUTPUT"] = str(tmp / "outputs.txt")
    return subprocess.run(
        ["slipway", *args], cwd=PROJECT, capture_output=True, text=True, env=env, check=False, timeout=900
    )


def served_version() -> str:
    request = urllib.request.Request(f"{PROXY}/version", headers={"Host": "notes.localhost"})  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback only
        return str(json.load(response)["version"])


def host_state() -> str:
    return subprocess.run(
        ["docker", "exec", HOST, "cat", STATE], capture_output=True, text=True, check=True
    ).stdout


def outputs(tmp: Path) -> dict[str, str]:
    lines = (tmp / "outputs.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def deploy_json(tmp: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    run = slipway("deploy", "--env", "local", "--json", "--artifacts-dir", str(tmp / "artifacts"), *args, tmp=tmp)
    return run, json.loads(run.stdout)


def test_deploy_then_rollback_through_the_cli(local_host: str, tmp_path: Path) -> None:
    # The fixture converged to the inventory's version (v1.0.0); deploying it again has nothing to do.
    base = slipway("deploy", "--env", "local", "--json")
    assert base.returncode == 0, base.stderr[-3000:]
    assert json.loads(base.stdout)["outcome"] == "noop"
    assert served_version() == "v1.0.0"

    # --check plans: v2.0.0 would replace v1.0.0; nothing changes on the host.
    before = host_state()
    plan = slipway("deploy", "--env", "local", "--service", "notes-api", "--version", "v2.0.0", "--check", "--json")
    assert plan.returncode == 0, plan.stderr[-3000:]
    planned = json.loads(plan.stdout)
    assert planned["outcome"] == "planned", planned
    assert planned["reason"] == "would deploy notes-api@slipway-local v1.0.0 -> v2.0.0"
    assert host_state() == before and served_version() == "v1.0.0"

    run, result = deploy_json(tmp_path, "--service", "notes-api", "--version", "v2.0.0")
    assert run.returncode == 0, run.stderr[-3000:]
    assert result["outcome"] == "deployed"
    assert result["exit_code"] == 0
    assert served_version() == "v2.0.0"
    out = outputs(tmp_path)
    assert out["outcome"] == "deployed"
    assert out["exit_code"] == "0"
    assert out["services"] == "notes-api"
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "| slipway-local | notes-api | deployed | v2.0.0 | v1.0.0 |" in summary
    state = json.loads(host_state())
    assert state["live"]["version"] == "v2.0.0"
    assert state["kept"]["version"] == "v1.0.0"

    back = slipway("rollback", "--env", "local", "--service", "notes-api", "--json")
    assert back.returncode == 0, back.stderr[-3000:]
    assert json.loads(back.stdout)["outcome"] == "deployed"
    assert served_version() == "v1.0.0"


def test_failed_deploy_exits_1_and_the_previous_release_serves(local_host: str, tmp_path: Path) -> None:
    assert slipway("deploy", "--env", "local").returncode == 0
    before = served_version()
    run, result = deploy_json(tmp_path, "--service", "notes-api", "--version", "v3.0.0-badhealth")
    assert run.returncode == 1, run.stderr[-3000:]
    assert result["outcome"] == "failed"
    assert outputs(tmp_path)["failed"] == "notes-api@slipway-local"
    assert "health" in (tmp_path / "summary.md").read_text(encoding="utf-8").lower()
    assert served_version() == before


@pytest.mark.parametrize(
    "args",
    [
        ("deploy", "--env", "nosuch"),
        ("deploy", "--env", "local", "--service", "nosuch-api"),
        ("deploy", "--env", "local", "--service", "notes-api", "--version", "1.2"),
        ("deploy", "--env", "local", "--service", "notes-api", "--version", "v1.2.3; rm -rf /"),
        ("deploy", "--env", "local", "--service", "notes-api", "--version", "v" * 10_000),
    ],
)
def test_bad_input_exits_2_and_leaves_the_host_untouched(local_host: str, args: tuple[str, ...]) -> None:
    before = host_state()
    run = slipway(*args)
    assert run.returncode == 2
    assert run.stderr.strip()
    assert host_state() == before


def test_no_seeded_secret_reaches_any_output(local_host: str, tmp_path: Path) -> None:
    vault = yaml.safe_load((PROJECT / "inventories/local/group_vars/local/vault.yml").read_text(encoding="utf-8"))
    secrets = [str(v) for v in vault.values() if len(str(v)) >= 8]
    assert secrets, "the local inventory holds no demo secrets to look for"
    run, _ = deploy_json(tmp_path, "--service", "notes-api", "--version", "v2.0.0")
    assert run.returncode == 0, run.stderr[-3000:]
    texts = {"stdout": run.stdout, "stderr": run.stderr}
    for path in tmp_path.rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_text(encoding="utf-8", errors="replace")
    assert any("artifacts" in name for name in texts), "ansible-runner left no artifacts to check"
    leaks = [(name, secret[:3] + "...") for name, text in texts.items() for secret in secrets if secret in text]
    assert leaks == []
