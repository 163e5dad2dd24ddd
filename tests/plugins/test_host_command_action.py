"""slipway.core.host_command, run for real: ansible-playbook on this machine (local connection), no fakes.

The action calls the host program (`--expect-build <the controller's build>` first) with the argv through the
connection's shell and the input on stdin, and installs the controller's build first when the host has another one.
These tests show what the rollout relies on: arguments reach the program unchanged (no shell expansion), stdin
arrives whole and is never on the command line, rc/stdout/stderr come back like ansible.builtin.command's, a
failing program fails the task unless failed_when says otherwise, check mode skips it unless the task sets
check_mode: false; a missing or outdated program is installed (once) as the zipapp plus two links, and in check mode
an outdated host runs a temporary copy and keeps its own.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import zipfile
from pathlib import Path

from plugin_loader import dump_task, loaded, play

from slipway_core import build

TEMPORARY_COPIES = "/tmp/slipway-host.*"  # noqa: S108 - where the action's check-mode copy goes (mktemp)
RECORDER = """#!/usr/bin/env python3
import json, sys
json.dump([sys.argv[1:], sys.stdin.read()], open({seen!r}, "w"))
"""


def program(tmp_path: Path, text: str) -> Path:
    """A stand-in for the host program (answers 0, so the action takes it as the current build)."""
    path = tmp_path / "sbin" / "slipway-release"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


def paths(tmp_path: Path) -> str:
    return f'program: "{tmp_path}/sbin/slipway-release"\n            artifact: "{tmp_path}/lib/slipway-host.pyz"'


def test_arguments_and_stdin_reach_the_program_unchanged(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    program(tmp_path, RECORDER.format(seen=str(seen)))
    result = play(tmp_path, f"""
        - name: Run the program with awkward arguments and input
          slipway.core.host_command:
            {paths(tmp_path)}
            argv: ["two words", "$HOME", "it's", "a;b", "*"]
            stdin: "line 1\\n'quoted' $PATH `x`\\n"
          register: out
    """ + dump_task("out", tmp_path / "out.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    args, stdin = json.loads(seen.read_text(encoding="utf-8"))
    assert args == ["--expect-build", build.build_id(), "two words", "$HOME", "it's", "a;b", "*"]
    assert stdin == "line 1\n'quoted' $PATH `x`\n"
    shown = loaded(tmp_path / "out.json")
    assert shown["rc"] == 0 and shown["changed"] is True and shown["installed"] is False
    assert shown["cmd"] == [f"{tmp_path}/sbin/slipway-release", "two words", "$HOME", "it's", "a;b", "*"]


def test_stdin_is_not_on_the_command_line(tmp_path: Path) -> None:
    secret = "s3cr3t-stdin-only-4711"  # pragma: allowlist secret
    program(tmp_path, "#!/bin/sh\ncat >/dev/null; tr '\\0' ' ' </proc/$$/cmdline; tr '\\0' ' ' </proc/$PPID/cmdline\n")
    result = play(tmp_path, f"""
        - name: Read the input and show the command line the program was started with
          slipway.core.host_command:
            {paths(tmp_path)}
            argv: [begin]
            stdin: "{secret}"
          register: out
    """ + dump_task("out", tmp_path / "out.json"), "-vvv")
    assert result.returncode == 0, result.stdout + result.stderr
    shown = loaded(tmp_path / "out.json")
    assert "slipway-release --expect-build" in str(shown["stdout"])
    assert secret not in str(shown["stdout"])
    assert secret not in result.stdout.replace(f'stdin: "{secret}"', "")  # -vvv logs the command, not the input


def test_a_failing_program_fails_the_task_with_its_output(tmp_path: Path) -> None:
    program(tmp_path, "#!/bin/sh\necho out; echo the reason >&2; exit 3\n")
    result = play(tmp_path, f"""
        - name: Fail on purpose
          slipway.core.host_command:
            {paths(tmp_path)}
            argv: [run]
          register: out
          ignore_errors: true
    """ + dump_task("out", tmp_path / "out.json") + f"""
        - name: Tolerated by failed_when
          slipway.core.host_command:
            {paths(tmp_path)}
            argv: [run]
          register: tolerated
          failed_when: tolerated.rc not in [0, 3]
    """)
    assert result.returncode == 0, result.stdout + result.stderr
    shown = loaded(tmp_path / "out.json")
    assert (shown["rc"], shown["failed"], shown["stdout"], shown["stderr"]) == (3, True, "out", "the reason")
    assert "exited with 3: the reason" in str(shown["msg"])
    assert shown["answer"] == {**shown["answer"], "result": "unknown"}  # type: ignore[dict-item]
    assert "ok=3" in result.stdout and "failed=0" in result.stdout and "ignored=1" in result.stdout


def test_check_mode_skips_unless_the_task_opts_out(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    program(tmp_path, f'#!/bin/sh\ntouch "{marker}-$3"\n')
    result = play(tmp_path, f"""
        - name: Would touch a file
          slipway.core.host_command:
            {paths(tmp_path)}
            argv: [skipped]
        - name: Runs in check mode too
          slipway.core.host_command:
            {paths(tmp_path)}
            argv: [forced]
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


def build_task(tmp_path: Path, name: str) -> str:
    return f"""
        - name: Ask the host program for its build ({name})
          slipway.core.host_command:
            {paths(tmp_path)}
            argv: [build]
          register: {name}
          check_mode: false
        - name: Keep the result ({name})
          ansible.builtin.copy:
            content: "{{{{ {name} | to_json }}}}"
            dest: "{tmp_path / f"{name}.json"}"
            mode: "0600"
          check_mode: false
    """


def test_a_missing_program_is_installed_once_then_used(tmp_path: Path) -> None:
    result = play(tmp_path, build_task(tmp_path, "first") + build_task(tmp_path, "second"))
    assert result.returncode == 0, result.stdout + result.stderr
    first, second = loaded(tmp_path / "first.json"), loaded(tmp_path / "second.json")
    assert (first["installed"], first["stdout"]) == (True, build.build_id())
    assert (second["installed"], second["stdout"]) == (False, build.build_id())
    artifact = tmp_path / "lib" / "slipway-host.pyz"
    assert os.access(artifact, os.X_OK)
    assert compiled_members(artifact) == {name: content for name, content in build.members() if name.endswith(".py")}
    for command in ("slipway-release", "slipway-proxy"):
        assert os.readlink(tmp_path / "sbin" / command) == str(artifact)


def compiled_members(artifact: Path) -> dict[str, bytes]:
    """The zipapp's modules (name -> source), each checked to come with its bytecode beside it for the zipapp's own
    interpreter (build.INTERPRETER, this machine's): that interpreter's magic number, unchecked-hash (PEP 552 flags
    0b01), so no run of the program compiles a source again."""
    magic = subprocess.run([build.INTERPRETER, "-c", "import importlib.util, sys; "
                            "sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"],
                           capture_output=True, text=True, check=True).stdout
    with zipfile.ZipFile(artifact) as archive:
        names = set(archive.namelist())
        sources = {name: archive.read(name) for name in names if name.endswith(".py")}
        for name in sources:
            assert f"{name}c" in names, f"{name} has no bytecode beside it"
            header = archive.read(f"{name}c")[:8]
            assert (header[:4].hex(), int.from_bytes(header[4:8], "little")) == (magic, 0b01), name
    assert artifact.read_bytes().startswith(f"#!{build.INTERPRETER}\n".encode())
    # Tracebacks name the module inside the installed zipapp, not the directory it was compiled in.
    shown = subprocess.run([build.INTERPRETER, "-c", "import marshal, sys, zipfile; sys.stdout.write(marshal.loads("
                            "zipfile.ZipFile(sys.argv[1]).read('slipway_core/host/main.pyc')[16:]).co_filename)",
                            str(artifact)], capture_output=True, text=True, check=True).stdout
    assert shown == f"{artifact}/slipway_core/host/main.py"
    return sources


def test_an_outdated_program_is_replaced(tmp_path: Path) -> None:
    """Another build answers 4; the single-file programs of earlier releases answer argparse's usage error."""
    for old in ("#!/bin/sh\necho 'this build is not the controller' >&2; exit 4\n",
                "#!/bin/sh\necho 'usage: slipway-release [-h] {begin,switch}' >&2; exit 2\n"):
        program(tmp_path, old)
        result = play(tmp_path, build_task(tmp_path, "out"))
        assert result.returncode == 0, result.stdout + result.stderr
        shown = loaded(tmp_path / "out.json")
        assert (shown["installed"], shown["rc"], shown["stdout"]) == (True, 0, build.build_id())
        assert (tmp_path / "sbin" / "slipway-release").is_symlink()
        (tmp_path / "sbin" / "slipway-release").unlink()


def test_check_mode_runs_a_temporary_copy_and_installs_nothing(tmp_path: Path) -> None:
    old = program(tmp_path, "#!/bin/sh\nexit 4\n")
    before = set(glob.glob(TEMPORARY_COPIES))
    result = play(tmp_path, build_task(tmp_path, "out"), "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    shown = loaded(tmp_path / "out.json")
    assert (shown["installed"], shown["stdout"]) == (False, build.build_id())
    assert old.read_text(encoding="utf-8") == "#!/bin/sh\nexit 4\n" and not old.is_symlink()
    assert not (tmp_path / "lib").exists()
    assert set(glob.glob(TEMPORARY_COPIES)) == before, "the temporary copy is removed"
