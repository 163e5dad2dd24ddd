"""Issue 14, item 8, with the REAL ansible-runner and ansible-playbook (connection: local, no Docker): SIGTERM or
SIGINT stops a `slipway deploy` whose task sleeps within 2 s, and no process of the run is left (ansible-core's
workers call setsid(), so killing ansible-playbook's group alone left one running: found by the run's marker)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slipway import process_tree

SLEEPING_DEPLOY = """\
- name: Roll out
  hosts: "{{ env }}"
  gather_facts: false
  tasks:
    - name: lock | a host command that takes long
      ansible.builtin.command: sleep 120
      changed_when: false
"""


def marked(run_id: str) -> list[int]:
    """Processes whose environment carries a marker of this run (the deploy's or its unlock's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if any(item.startswith(f"{process_tree.MARKER_VAR}={run_id}".encode()) for item in environ.split(b"\0")):
                found.append(int(entry.name))
    return found


def start(project: Path, tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    slipway = Path(sys.executable).parent / "slipway"
    proc = subprocess.Popen(
        [str(slipway), "deploy", "--env", "demo", "--project-dir", str(project), "--no-notify"],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"\(run ([0-9a-f]+)\)", line)
    assert match, line
    return proc, match.group(1)


def wait_for_sleep(run_id: str, timeout: float = 30) -> None:
    """Until the task's `sleep 120` runs (a process of the run whose command line is that)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in marked(run_id):
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"120"]:
                    return
            except OSError:
                continue
        time.sleep(0.05)
    pytest.fail("the task's sleep never started")


def cancel_mid_task(
    project: Path, tmp_path: Path, sig: signal.Signals, timeout: float
) -> tuple[int, str, str, float, str]:
    """Start a real `slipway deploy`, send `sig` while its task's sleep runs: (exit code, stdout, stderr, seconds
    from the signal to the exit, run id)."""
    proc, run_id = start(project, tmp_path)
    try:
        wait_for_sleep(run_id)
        assert len(marked(run_id)) >= 3  # ansible-playbook, its worker (own session), the module, sleep
        sent = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=timeout)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode, out, err, took, run_id


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_run_within_2s_and_leaves_no_process(
    project: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    (project / "playbooks/deploy.yml").write_text(SLEEPING_DEPLOY)
    (project / "playbooks/unlock.yml").unlink()  # the unlock run after a cancel is timed in the test below
    returncode, out, err, took, run_id = cancel_mid_task(project, tmp_path, sig, timeout=10)
    assert returncode == 3, out + err
    assert "the run was cancelled" in out
    assert took < 2.0, f"exit {took:.2f}s after the signal"
    assert marked(run_id) == []


def test_the_unlock_after_a_cancel_runs_and_leaves_no_process(project: Path, tmp_path: Path) -> None:
    (project / "playbooks/deploy.yml").write_text(SLEEPING_DEPLOY)
    returncode, out, err, took, run_id = cancel_mid_task(project, tmp_path, signal.SIGTERM, timeout=30)
    assert returncode == 3, out + err
    assert f"cancelled: locks of run {run_id} released" in out
    assert took < 7.5, f"exit {took:.2f}s after the signal (GitHub sends SIGKILL 7.5 s after its first signal)"
    assert marked(run_id) == []


def test_terminate_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    marker = process_tree.marker_for("t1")
    script = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
              "time.sleep(60)")
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ, process_tree.MARKER_VAR: marker},
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "up\n"
        assert process_tree.find(marker) == [proc.pid]
        started = time.monotonic()
        # the child is ours: reap it as soon as it dies so that it leaves no zombie behind the scan
        left = process_tree.terminate(marker, grace=0.3)
        assert time.monotonic() - started < 1.5
        assert left == []
    finally:
        proc.kill()
        proc.wait()
    assert process_tree.find(marker, tmp_path) == []  # no /proc there: nothing found
