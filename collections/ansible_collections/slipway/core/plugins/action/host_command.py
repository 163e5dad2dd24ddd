"""Run one program on the managed host with its input on stdin, without a module wrapper.

`ansible.builtin.command` ships a Python module to the host and starts an interpreter for it on every call
(about 0.2 s each, measured). The rollout's host program, slipway-release, answers in JSON itself, so this action
only sends its argv (quoted, through the connection's shell and become) and its stdin, and returns what the
command module returns: rc, stdout, stderr and their lines. It never changes anything on its own: the task's
`changed_when` and `failed_when` decide. The input (a release with secrets) travels on stdin only, never on the
command line; the tasks that pass secrets also set no_log.
"""

from __future__ import annotations

import shlex
from typing import Any

from ansible.plugins.action import ActionBase

ARGUMENT_SPEC: dict[str, Any] = {
    "argv": {"type": "list", "elements": "str", "required": True},
    "stdin": {"type": "str", "required": False},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True  # handled below, as ansible.builtin.command does

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if self._task.check_mode:  # like ansible.builtin.command: not run, unless the task says check_mode: false
            return {**result, "skipped": True, "changed": False, "msg": "not run in check mode"}
        argv: list[str] = args["argv"]
        if not argv:
            return {**result, "failed": True, "msg": "host_command: argv is empty; give the program and its arguments"}
        stdin = args.get("stdin")
        cmd = " ".join(shlex.quote(part) for part in argv)
        out = self._low_level_execute_command(cmd, sudoable=True, in_data=stdin.encode() if stdin is not None else None)
        rc = int(out.get("rc", 1))
        stdout = out.get("stdout", "").rstrip("\n")
        stderr = out.get("stderr", "").rstrip("\n")
        result.update({
            "cmd": argv,
            "rc": rc,
            "stdout": stdout,
            "stderr": stderr,
            "stdout_lines": stdout.splitlines(),
            "stderr_lines": stderr.splitlines(),
            "changed": True,
            "failed": rc != 0,
        })
        if rc != 0:
            result["msg"] = f"{argv[0]} exited with {rc}: {stderr[-500:] or 'no output on stderr'}"
        return result
