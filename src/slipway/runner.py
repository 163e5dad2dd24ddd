"""The one place that starts ansible-playbook: ansible-runner, a private directory, an explicit environment.

- private data directory: a fresh 0700 temp dir, removed afterwards (artifacts copied out only on request);
- env files suppressed (`suppress_env_files`): extra vars, env vars, SSH key are not written under env/;
- the child's environment is built from an allow-list (BASE_ENV, ANSIBLE_*/runner keys, the secrets of
  slipway.secrets.TO_PLAYBOOKS), not inherited wholesale;
- the CLI runs its own Ansible: the directory of the running interpreter (a virtualenv's bin/, where pip put
  ansible-playbook next to slipway) comes first on the child's PATH, so `.venv/bin/slipway` works from a shell
  whose PATH lacks .venv/bin;
- ansible-runner records the child's environment in artifacts/<ident>/command: that path is made a FIFO that
  this process drains and discards, so the environment (and the secrets in it) never reaches a disk;
- the SSH key goes to ssh-agent through ansible-runner's FIFO (ssh_key), never to a file;
- host key checking is forced on (ansible-runner would turn it off), facts are cached in memory only;
- `cancelled` (an Event set by the SIGTERM/SIGINT handlers) is polled through cancel_callback every POLL seconds
  (ansible-runner's default is 5 s); a cancel stops every process of the run, ansible-core's workers (which leave
  ansible-playbook's process group) included, found by the marker in their environment (slipway.process_tree).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_runner.config.runner import RunnerConfig  # type: ignore[import-untyped]
from ansible_runner.runner import Runner  # type: ignore[import-untyped]

from slipway import process_tree
from slipway.secrets import SSH_PRIVATE_KEY, VAULT_PASSWORD, Secrets

BASE_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "USER",
    "LOGNAME",
    "VIRTUAL_ENV",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "SLIPWAY_LOCAL_HOST",  # which container the `local` inventory's host is (inventories/local/hosts.yml)
)
RUNNER_PREFIXES = ("ANSIBLE_", "AWX_", "RUNNER_")
RUNNER_KEYS = ("ORIGINAL_STDOUT_CALLBACK", "AD_HOC_COMMAND_ID")
VAULT_CLIENT = "scripts/vault-password.sh"
POLL = 0.1  # seconds between two looks at the cancel flag

EventCallback = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class PlaybookRun:
    """One ansible-playbook run: what to run, with which variables and secrets."""

    project: Path
    playbook: str  # relative to project
    extravars: Mapping[str, str]
    secrets: Secrets
    environ: Mapping[str, str]  # the CLI's environment: only BASE_ENV and ANSIBLE_* names are read from it
    ident: str
    check: bool = False  # ansible-playbook --check --diff: report what would change, change nothing
    keep_artifacts: Path | None = None
    inspect_artifacts: Callable[[Path], None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RunnerOutcome:
    status: str
    rc: int
    cancelled: bool


def ansible_bin_dir() -> Path | None:
    """Where this CLI's own Ansible is: the directory of the running interpreter (not resolved: a virtualenv's
    bin/python is a link to the system's python, its bin/ has the ansible-playbook installed with slipway)."""
    return Path(sys.executable).parent if sys.executable else None


def child_path(path: str | None) -> str:
    """The child's PATH: ansible_bin_dir() first, then the caller's PATH (the system default when it has none)."""
    rest = (os.defpath if path is None else path).split(os.pathsep)
    own = ansible_bin_dir()
    if own is None:
        return os.pathsep.join(rest)
    return os.pathsep.join([str(own), *(entry for entry in rest if entry != str(own))])


def child_environment(run: PlaybookRun, prepared: Mapping[str, str]) -> dict[str, str]:
    """The child's whole environment: the allow-list, runner's own keys, Slipway's settings, the secrets."""
    env = {k: v for k, v in prepared.items() if k.startswith(RUNNER_PREFIXES) or k in RUNNER_KEYS}
    env.update({k: run.environ[k] for k in BASE_ENV if k in run.environ})
    env["PATH"] = child_path(run.environ.get("PATH"))
    if not run.secrets.get(SSH_PRIVATE_KEY) and "SSH_AUTH_SOCK" in run.environ:
        env["SSH_AUTH_SOCK"] = run.environ["SSH_AUTH_SOCK"]  # a person's own agent
    env.update(
        {
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.memory",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
        }
    )
    env.pop("ANSIBLE_CACHE_PLUGIN_CONNECTION", None)
    env.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)
    if run.secrets.get(VAULT_PASSWORD):
        env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(run.project / VAULT_CLIENT)
    env.update(run.secrets.for_playbooks())
    return env


def _discard_fifo(path: Path) -> threading.Thread:
    """Make `path` a FIFO whose every byte is read and dropped (see the module docstring)."""
    os.mkfifo(path, stat.S_IRUSR | stat.S_IWUSR)

    def drain() -> None:
        with path.open("rb") as fifo:
            while fifo.read(65536):
                pass

    thread = threading.Thread(target=drain, name="slipway-discard", daemon=True)
    thread.start()
    return thread


def _release_fifo(path: Path, thread: threading.Thread) -> None:
    """Unblock the drain thread if ansible-runner never opened the FIFO."""
    if thread.is_alive():
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=5)


def _copy_artifacts(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for item in source.rglob("*"):
        if item.is_file() and not item.is_symlink() and stat.S_ISREG(item.stat().st_mode):
            dest = target / item.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copyfile(item, dest)


def _stopper(cancelled: threading.Event, marker: str) -> Callable[[], bool]:
    """ansible-runner's cancel_callback: once `cancelled` is set, stop every process of the run (then runner kills
    what is left of ansible-playbook's group and reports the run canceled)."""

    def stop() -> bool:
        if not cancelled.is_set():
            return False
        process_tree.terminate(marker)
        return True

    return stop


def ssh_key(secrets: Secrets) -> str | None:
    """The private key for ssh-agent, ending with its newline: ssh-add refuses an OpenSSH key without it ("error
    in libcrypto"), and `export SLIPWAY_SSH_PRIVATE_KEY="$(cat key)"` (the shell's $(...)) drops it."""
    key = secrets.get(SSH_PRIVATE_KEY)
    return key if not key or key.endswith("\n") else key + "\n"


def run_playbook(run: PlaybookRun, on_event: EventCallback, cancelled: threading.Event) -> RunnerOutcome:
    """Run one playbook to its end (or until `cancelled` is set); the private directory is always removed."""
    private = Path(tempfile.mkdtemp(prefix="slipway-"))
    private.chmod(0o700)
    try:
        config = RunnerConfig(
            private_data_dir=str(private),
            project_dir=str(run.project),
            playbook=run.playbook,
            extravars=dict(run.extravars),
            ident=run.ident,
            json_mode=True,
            quiet=True,
            suppress_env_files=True,
            fact_cache_type="memory",
            ssh_key=ssh_key(run.secrets),
            cmdline="--check --diff" if run.check else None,
        )
        config.prepare()
        config.env = child_environment(run, config.env)
        marker = process_tree.marker_for(run.ident)
        config.env[process_tree.MARKER_VAR] = marker
        config.pexpect_timeout = POLL
        artifact_dir = Path(config.artifact_dir)
        artifact_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        command_file = artifact_dir / "command"
        drain = _discard_fifo(command_file)
        try:
            runner = Runner(config, event_handler=on_event, cancel_callback=_stopper(cancelled, marker))
            runner.run()
        finally:
            _release_fifo(command_file, drain)
        if run.inspect_artifacts is not None:
            run.inspect_artifacts(artifact_dir)
        if run.keep_artifacts is not None:
            _copy_artifacts(artifact_dir, run.keep_artifacts)
        return RunnerOutcome(str(runner.status), int(runner.rc or 0), bool(runner.canceled))
    finally:
        shutil.rmtree(private, ignore_errors=True)
