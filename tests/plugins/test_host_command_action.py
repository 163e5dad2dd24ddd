"""slipway.core.host_command, run for real: ansible-playbook on this machine (local connection), no fakes.

The action sends the argv through the connection's shell and the input on stdin. These tests show what the
rollout relies on: arguments reach the program unchanged (no shell expansion), stdin arrives whole and is never
on the command line, rc/stdout/stderr come back like ansible.builtin.command's, a failing program fails the task
unless failed_when says otherwise, and check mode skips it unless the task sets check_mode: false.
"""

from __future__ import annotations

import json
from pathlib import Path

from plugin_loader import dump_task, loaded, play


def test_arguments_and_stdin_reach_the_program_unchanged(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    result = play(tmp_path, f"""
        - name: Run a program with awkward arguments and input
          slipway.core.host_command:
            argv: [python3, -c, "import sys, json; json.dump([sys.argv[1:], sys.stdin.read()], open('{seen}', 'w'))",
                   "two words", "$HOME", "it's", "a;b", "*"]
            stdin: "line 1\\n'quoted' $PATH `x`\\n"
          register: out
    """ + dump_task("out", tmp_path / "out.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    args, stdin = json.loads(seen.read_text(encoding="utf-8"))
    assert args == ["two words", "$HOME", "it's", "a;b", "*"]
    assert stdin == "line 1\n'quoted' $PATH `x`\n"
    shown = loaded(tmp_path / "out.json")
    assert shown["rc"] == 0 and shown["changed"] is True
    assert shown["cmd"][-5:] == ["two words", "$HOME", "it's", "a;b", "*"]  # type: ignore[index]


def test_stdin_is_not_on_the_command_line(tmp_path: Path) -> None:
    secret = "s3cr3t-stdin-only-4711"  # pragma: allowlist secret
    result = play(tmp_path, f"""
        - name: Read the input and show the command line the program was started with
          slipway.core.host_command:
            argv: [sh, -c, "cat >/dev/null; tr '\\\\0' ' ' </proc/$$/cmdline; tr '\\\\0' ' ' </proc/$PPID/cmdline"]
            stdin: "{secret}"
          register: out
    """ + dump_task("out", tmp_path / "out.json"), "-vvv")
    assert result.returncode == 0, result.stdout + result.stderr
    shown = loaded(tmp_path / "out.json")
    assert "sh -c" in str(shown["stdout"])
    assert secret not in str(shown["stdout"])
    assert secret not in result.stdout.replace(f'stdin: "{secret}"', "")  # -vvv logs the command, not the input


def test_a_failing_program_fails_the_task_with_its_output(tmp_path: Path) -> None:
    result = play(tmp_path, """
        - name: Fail on purpose
          slipway.core.host_command:
            argv: [sh, -c, "echo out; echo the reason >&2; exit 3"]
          register: out
          ignore_errors: true
    """ + dump_task("out", tmp_path / "out.json") + """
        - name: Tolerated by failed_when
          slipway.core.host_command:
            argv: ["false"]
          register: tolerated
          failed_when: tolerated.rc not in [0, 1]
    """)
    assert result.returncode == 0, result.stdout + result.stderr
    shown = loaded(tmp_path / "out.json")
    assert (shown["rc"], shown["failed"], shown["stdout"], shown["stderr"]) == (3, True, "out", "the reason")
    assert "exited with 3: the reason" in str(shown["msg"])
    assert "ok=3" in result.stdout and "failed=0" in result.stdout and "ignored=1" in result.stdout


def test_check_mode_skips_unless_the_task_opts_out(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result = play(tmp_path, f"""
        - name: Would touch a file
          slipway.core.host_command:
            argv: [touch, "{marker}-skipped"]
        - name: Runs in check mode too
          slipway.core.host_command:
            argv: [touch, "{marker}-forced"]
          check_mode: false
    """, "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not Path(f"{marker}-skipped").exists()
    assert Path(f"{marker}-forced").exists()


def test_an_empty_argv_is_refused(tmp_path: Path) -> None:
    result = play(tmp_path, """
        - name: Nothing to run
          slipway.core.host_command:
            argv: []
    """)
    assert result.returncode != 0
    assert "argv is empty" in result.stdout
