"""Run Slipway's host program on the managed host, installing or updating it first when needed.

The host program (slipway-release, slipway-proxy: one zipapp built from the slipway_core package, see
src/slipway_core/build.py) is called with `--expect-build <this controller's build>`. A host whose copy is missing or
another build answers exit 4 (or cannot run it at all): this action then installs the controller's build and asks
again, so every task that calls the program is also the one place that installs it. In check mode nothing is
installed: an outdated host runs the controller's build from a temporary copy, which is removed afterwards.

No module wrapper: `ansible.builtin.command` ships a Python module and starts an interpreter for it on every call
(about 0.2 s each, measured); this action sends the quoted argv through the connection's shell and become, and the
input on stdin only (a release with secrets never reaches a command line; the tasks that pass secrets set no_log).
It returns rc, stdout, stderr, `answer` (stdout read in the contract's result schema) and `installed`; the task's
changed_when and failed_when decide the rest.
"""

from __future__ import annotations

import base64
import posixpath
import shlex
from typing import Any

import ansible_mitogen.connection
import ansible_mitogen.target
from ansible.plugins.action import ActionBase
from ansible_collections.slipway.core.plugins.plugin_utils.core import load_build, load_contract

ARGUMENT_SPEC: dict[str, Any] = {
    "argv": {"type": "list", "elements": "str", "required": True},
    "stdin": {"type": "str", "required": False},
    "program": {"type": "str", "default": "/usr/local/sbin/slipway-release"},
    "artifact": {"type": "str", "default": "/usr/local/lib/slipway/slipway-host.pyz"},
}
COMMANDS = ("slipway-release", "slipway-proxy")
CANNOT_RUN = (126, 127)  # not executable, not found


def install_command(artifact: str, program: str, interpreter: str) -> str:
    """Shell command: the zipapp from stdin (base64) to `artifact`, atomically, compiled for the host's Python, and
    both commands linked to it beside `program`.

    A zipapp of sources alone is compiled again by every run of the program (zipimport writes no bytecode): about
    0.1 s of the host's CPU per call, measured on the demo cluster's hosts (0.21 s -> 0.10 s for `--help`). So the
    host's own interpreter (`interpreter`: the zipapp's shebang, the build's INTERPRETER) compiles each module beside
    its source, where zipimport looks (`compileall -b`), as unchecked-hash bytecode (no timestamp to compare: the
    archive is replaced whole or not at all), and packs the tree again. The sources stay in it (tracebacks show them,
    under the artifact's path, as a zipapp of sources does: `compileall -d`); the build id is the one in the sources
    (slipway_core/_build.py), so the controller's `--expect-build` answers the same. An interpreter of another
    version (the host's Python upgraded) does not read that bytecode and compiles the sources, as before."""
    base = posixpath.dirname(artifact)
    tmp = posixpath.join(base, ".slipway-host.new")
    work = posixpath.join(base, ".slipway-host.build")
    links = " && ".join(
        f"ln -sfn {shlex.quote(artifact)} {shlex.quote(posixpath.join(posixpath.dirname(program), c))}"
        for c in COMMANDS
    )
    q = shlex.quote
    tree, python = q(posixpath.join(work, "tree")), q(interpreter)
    script = (
        f"umask 022 && mkdir -p {q(base)} {q(posixpath.dirname(program))}"
        f" && rm -rf {q(work)} && mkdir {q(work)} && base64 -d > {q(work)}/source.pyz"
        f" && {python} -m zipfile -e {q(work)}/source.pyz {tree}"
        f" && {python} -m compileall -q -b -d {q(artifact)} --invalidation-mode unchecked-hash {tree} >/dev/null"
        f" && {python} -m zipapp {tree} -c -o {q(tmp)} -p {python}"
        f" && chmod 0755 {q(tmp)} && mv -f {q(tmp)} {q(artifact)} && rm -rf {q(work)} && {links}"
    )
    return f"sh -c {q(script)}"


def outdated(rc: int, stdout: str, stderr: str) -> bool:
    """The host's program is another build (exit 4), missing or not executable, or so old that it does not know
    `--expect-build` (argparse's usage error, exit 2, nothing on stdout)."""
    if rc == load_contract().EXIT_OUTDATED:
        return True
    return not stdout.strip() and (rc in CANNOT_RUN or (rc == load_contract().EXIT_USAGE and "usage:" in stderr))


def without_tty(connection: Any) -> bool:
    """Turn off the ssh connection's terminal for one call; True if it was on (the caller turns it back on).

    Over SSH, Ansible runs a become command that has no input under `ssh -tt`: the terminal merges the command's
    stderr into its stdout (and ends lines with \\r\\n), so a missing program's "not found" looked like an answer
    and the program's own stderr would corrupt its JSON answer. The program's output is read, never typed at.
    Connections without the option (docker, local) have no terminal to turn off."""
    try:
        if not connection.get_option("use_tty"):
            return False
    except KeyError:
        return False
    connection.set_option("use_tty", False)
    return True


def mitogen_call(connection: Any, cmd: str, stdin: bytes | None) -> tuple[int, bytes, bytes] | None:
    """Run `cmd` through a Mitogen connection (ansible.cfg's strategy, docs/testing.md "Mitogen") with stdout and
    stderr apart; None for any other connection.

    Mitogen's own command call gives a become command that has no input a terminal, as `ssh -tt` does, which merges
    stderr into stdout (a missing program's "not found" read as its answer, and the install never ran), and adds
    "Shared connection to ... closed." to stderr. This calls the same function in the host's Python without the
    terminal; the connection's chain is the become user's, as for every other task."""
    if not isinstance(connection, ansible_mitogen.connection.Connection):
        return None
    rc, stdout, stderr = connection.get_chain().call(
        ansible_mitogen.target.exec_command, cmd=str(cmd), in_data=stdin or b"", emulate_tty=False)
    return int(rc), bytes(stdout), bytes(stderr)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True  # handled below, as ansible.builtin.command does

    def _call(self, cmd: str, stdin: bytes | None) -> tuple[int, str, str]:
        direct = mitogen_call(self._connection, cmd, stdin)
        if direct is not None:
            rc, out_bytes, err_bytes = direct
            return rc, out_bytes.decode(errors="replace").rstrip("\n"), err_bytes.decode(errors="replace").rstrip("\n")
        tty = without_tty(self._connection)
        try:
            out = self._low_level_execute_command(cmd, sudoable=True, in_data=stdin)
        finally:
            if tty:
                self._connection.set_option("use_tty", True)
        return int(out.get("rc", 1)), str(out.get("stdout", "")).rstrip("\n"), str(out.get("stderr", "")).rstrip("\n")

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if self._task.check_mode:  # like ansible.builtin.command: not run, unless the task says check_mode: false
            return {**result, "skipped": True, "changed": False, "msg": "not run in check mode"}
        argv: list[str] = args["argv"]
        if not argv:
            return {**result, "failed": True, "msg": "host_command: argv is empty; give the program's arguments"}
        # The build's id names it (3 ms); the zipapp itself (70 ms of zip compression in each task's worker) is
        # made only for a host that must install it.
        ident = load_build().build_id()
        stdin = args["stdin"].encode() if args.get("stdin") is not None else None
        program = args["program"]
        call = " ".join(shlex.quote(part) for part in [program, "--expect-build", ident, *argv])
        rc, stdout, stderr = self._call(call, stdin)
        installed = False
        if outdated(rc, stdout, stderr):
            data, ident = load_build().build()
            payload = base64.b64encode(data)
            if (task_vars or {}).get("ansible_check_mode"):
                rc, stdout, stderr = self._from_temporary_copy(payload, ident, program, argv, stdin)
            else:
                irc, _, ierr = self._call(install_command(args["artifact"], program, load_build().INTERPRETER), payload)
                if irc != 0:
                    return {
                        **result,
                        "failed": True,
                        "rc": irc,
                        "msg": f"installing the host program at "
                        f"{args['artifact']} failed: {ierr[-500:] or 'no output'}",
                    }
                installed = True
                rc, stdout, stderr = self._call(call, stdin)
        result.update(
            {
                "cmd": [program, *argv],
                "rc": rc,
                "stdout": stdout,
                "stderr": stderr,
                "stdout_lines": stdout.splitlines(),
                "stderr_lines": stderr.splitlines(),
                "answer": load_contract().parse_result(stdout),
                "installed": installed,
                "build": ident,
                "changed": True,
                "failed": rc != 0,
            }
        )
        if rc != 0:
            result["msg"] = f"{program} exited with {rc}: {stderr[-500:] or 'no output on stderr'}"
        return result

    def _from_temporary_copy(
        self, payload: bytes, ident: str, program: str, argv: list[str], stdin: bytes | None
    ) -> tuple[int, str, str]:
        """Check mode on a host without this build: run it from a temporary copy, then remove the copy."""
        rc, path, err = self._call("mktemp /tmp/slipway-host.XXXXXX", None)
        if rc != 0:
            return rc, "", err
        path = path.strip()
        self._call(f"sh -c {shlex.quote(f'base64 -d > {shlex.quote(path)}')}", payload)
        try:
            mode = "proxy" if posixpath.basename(program).startswith("slipway-proxy") else "release"
            return self._call(
                " ".join(shlex.quote(p) for p in ["python3", path, mode, "--expect-build", ident, *argv]), stdin
            )
        finally:
            self._call(f"rm -f {shlex.quote(path)}", None)
