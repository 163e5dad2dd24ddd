"""The runner wrapper with the REAL ansible-runner and ansible-playbook on this machine (connection: local,
no Docker, no SSH): secrets reach the playbook, yet appear nowhere in stdout, stderr, the step summary, the
step outputs or ansible-runner's artifacts; the private directory is removed."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from slipway import cli, runner
from slipway.runner import EventCallback, PlaybookRun, RunnerOutcome, child_environment, run_playbook
from slipway.secrets import Secrets

SEEDED = {
    "SLIPWAY_VAULT_PASSWORD": "vault-pw-9f3b1c7e",  # pragma: allowlist secret
    "SLIPWAY_REGISTRY_USERNAME": "registry-user-5d2a",
    "SLIPWAY_REGISTRY_PASSWORD": "registry-pw-c81e0b44",  # pragma: allowlist secret
    "SLIPWAY_DINGTALK_WEBHOOK": "https://oapi.dingtalk.com/robot/send?access_token=tok-77aa31",
    "SLIPWAY_DINGTALK_SECRET": "SEC-dingtalk-4e6f",  # pragma: allowlist secret
}


@pytest.fixture
def ssh_key(tmp_path: Path) -> str:
    key = tmp_path / "id_test"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    text = key.read_text()
    key.unlink()
    return text


def test_secrets_appear_nowhere(
    project: Path, tmp_path: Path, ssh_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    private_root = tmp_path / "tmp"
    private_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_root))
    secrets = {**SEEDED, "SLIPWAY_SSH_PRIVATE_KEY": ssh_key}
    summary, output, kept = tmp_path / "summary.md", tmp_path / "output", tmp_path / "kept"
    scanned: dict[str, bytes] = {}
    fifos: list[str] = []

    def scan(artifact_dir: Path) -> None:
        for item in artifact_dir.rglob("*"):
            mode = item.lstat().st_mode
            if stat.S_ISFIFO(mode):
                fifos.append(item.name)
            elif stat.S_ISREG(mode):
                scanned[str(item.relative_to(artifact_dir))] = item.read_bytes()

    def run(request: PlaybookRun, on_event: EventCallback, cancelled: threading.Event) -> RunnerOutcome:
        return run_playbook(dataclasses.replace(request, inspect_artifacts=scan), on_event, cancelled)

    posted: list[tuple[str, dict[str, Any]]] = []
    out, err = io.StringIO(), io.StringIO()
    environ = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_ACTIONS": "true",
        **secrets,
    }
    args = ["deploy", "--env", "demo", "--project-dir", str(project), "--json", "--artifacts-dir", str(kept)]
    code = cli.main(
        args, environ=environ, run=run, post=lambda u, p: posted.append((u, p)), streams=cli.Streams(out, err)
    )

    assert code == 0, err.getvalue() + out.getvalue()
    data = json.loads(out.getvalue())
    assert data["outcome"] == "deployed"
    assert [p["phase"] for p in data["phases"]] == ["preflight", "lock", "start", "record"]
    assert "::group::preflight" in err.getvalue()
    assert "command" in fifos  # the environment dump went into a FIFO, not a file
    assert any(name.startswith("job_events/") for name in scanned)
    assert len(posted) == 1
    assert list(private_root.iterdir()) == []  # private data dir removed

    kept_files = {str(p): p.read_bytes() for p in kept.rglob("*") if p.is_file()}
    texts = {
        "stdout": out.getvalue().encode(),
        "stderr": err.getvalue().encode(),
        "summary": summary.read_bytes(),
        "outputs": output.read_bytes(),
        **scanned,
        **kept_files,
    }
    pieces = [*SEEDED.values(), *[line for line in ssh_key.splitlines() if len(line) > 20]]
    for name, content in texts.items():
        for piece in pieces:
            assert piece.encode() not in content, f"a seeded secret leaked into {name}"
    # The notification carries the DingTalk signature, computed from the secret, but not the secret itself.
    assert "sign=" in posted[0][0]
    assert SEEDED["SLIPWAY_DINGTALK_SECRET"] not in json.dumps(posted)


def test_child_environment_is_an_allow_list(project: Path) -> None:
    request = PlaybookRun(
        project=project,
        playbook="playbooks/deploy.yml",
        extravars={},
        secrets=Secrets.from_environ({**SEEDED, "SLIPWAY_SSH_PRIVATE_KEY": "k"}),
        environ={"PATH": "/bin", "HOME": "/h", "AWS_SECRET_ACCESS_KEY": "x", "SSH_AUTH_SOCK": "/a"},
        ident="t",
    )
    prepared = {
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": "/tmp/x",  # noqa: S108 - a value, nothing is written
        "AWX_ISOLATED_DATA_DIR": "/p",
        "RANDOM_PARENT_VAR": "y",
        "SLIPWAY_DINGTALK_SECRET": "z",
    }
    env = child_environment(request, prepared)
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert env["ANSIBLE_CACHE_PLUGIN"] == "ansible.builtin.memory"
    assert env["ANSIBLE_VAULT_PASSWORD_FILE"] == str(project / "scripts/vault-password.sh")
    assert env["SLIPWAY_REGISTRY_PASSWORD"] == SEEDED["SLIPWAY_REGISTRY_PASSWORD"]
    for absent in (
        "AWS_SECRET_ACCESS_KEY",
        "RANDOM_PARENT_VAR",
        "SLIPWAY_DINGTALK_SECRET",
        "SLIPWAY_DINGTALK_WEBHOOK",
        "SLIPWAY_SSH_PRIVATE_KEY",
        "SSH_AUTH_SOCK",  # the key goes to runner's own agent instead
        "ANSIBLE_CACHE_PLUGIN_CONNECTION",
    ):
        assert absent not in env
    # The CLI's own Ansible first (the interpreter's directory: .venv/bin), then the caller's PATH.
    assert env["PATH"] == f"{Path(sys.executable).parent}{os.pathsep}/bin"
    no_path = child_environment(dataclasses.replace(request, environ={"HOME": "/h"}), prepared)
    assert no_path["PATH"] == f"{Path(sys.executable).parent}{os.pathsep}{os.defpath}"
    assert env["AWX_ISOLATED_DATA_DIR"] == "/p"


def test_failed_run_reports_ansible_error(project: Path) -> None:
    """A playbook that fails outside a rollout (no results) maps to exit code 3, with Ansible's error."""
    (project / "playbooks/status.yml").write_text(
        "- name: Status\n  hosts: demo\n  gather_facts: false\n  tasks:\n"
        "    - name: Fail\n      ansible.builtin.fail:\n        msg: status is broken\n"
    )
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        ["status", "--env", "demo", "--project-dir", str(project)],
        environ={"PATH": os.environ["PATH"], "HOME": str(project)},
        streams=cli.Streams(out, err),
    )
    assert code == 3
    assert "failed: demo-1: Fail: status is broken" in err.getvalue()
    assert "Ansible failed outside a rollout on demo-1: Fail: status is broken\n" in out.getvalue()


# Issue 14, item 6: the CLI finds its own Ansible; a failure before any task names its cause.


def run_cli(args: list[str], environ: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(args, environ=environ, post=lambda u, p: None, streams=cli.Streams(out, err))
    return code, out.getvalue(), err.getvalue()


def test_runs_its_own_ansible_without_the_virtualenv_on_path(project: Path, tmp_path: Path) -> None:
    """`.venv/bin/slipway` from a shell whose PATH has no ansible-playbook at all: the one next to the running
    interpreter runs (before: rc 127, "Ansible failed outside a rollout" after 0.0 s)."""
    code, out, err = run_cli(
        ["status", "--env", "demo", "--project-dir", str(project)],
        {"PATH": str(tmp_path / "no-such-dir"), "HOME": str(tmp_path)},
    )
    assert code == 0, out + err
    assert out.startswith("slipway status demo: ok - done")


def test_a_missing_ansible_playbook_is_named(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ansible-playbook anywhere (the interpreter's directory made an empty one): ansible-runner's rc 127 and
    its own line are the reason, not only "Ansible failed outside a rollout"."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(runner, "ansible_bin_dir", lambda: empty)
    code, out, _err = run_cli(
        ["status", "--env", "demo", "--project-dir", str(project)],
        {"PATH": str(empty), "HOME": str(tmp_path)},
    )
    assert code == 3
    assert out.splitlines()[0] == (
        "slipway status demo: needs-person - Ansible failed outside a rollout: "
        "The command was not found or was not executable: ansible-playbook. (rc 127)"
    )


def test_a_junk_ssh_key_shows_ssh_adds_error(project: Path, tmp_path: Path) -> None:
    """SLIPWAY_SSH_PRIVATE_KEY for an environment without SSH hosts is not checked beforehand; ansible-runner's
    ssh-add refuses it and its error (not the key) is the reason."""
    junk = "this is not a private key at all"  # pragma: allowlist secret
    code, out, err = run_cli(
        ["status", "--env", "demo", "--project-dir", str(project)],
        {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SLIPWAY_SSH_PRIVATE_KEY": junk},
    )
    assert code == 3
    first = out.splitlines()[0]
    assert first.startswith("slipway status demo: needs-person - Ansible failed outside a rollout: Error loading key")
    assert first.endswith("(rc 1)")
    assert junk not in out + err


def test_a_key_without_its_last_newline_is_loaded(project: Path, tmp_path: Path, ssh_key: str) -> None:
    """`export SLIPWAY_SSH_PRIVATE_KEY="$(cat key)"` drops the key file's last newline (the shell's $(...) does),
    and so may a CI secret pasted without it. The preflight check accepted such a key, but ssh-add, which
    ansible-runner runs with the key as given, refused it ("error in libcrypto", exit 3) until the runner gave the
    key its newline back (found by `make demo-cluster`'s hint)."""
    code, out, err = run_cli(
        ["status", "--env", "demo", "--project-dir", str(project)],
        {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SLIPWAY_SSH_PRIVATE_KEY": ssh_key.rstrip("\n")},
    )
    assert code == 0, out + err
    assert out.startswith("slipway status demo: ok - done")
