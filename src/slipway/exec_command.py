"""`slipway exec --env E --service S [--host H] [--timeout SECONDS] -- CMD...`: one command in a one-off container of
the service's LIVE release on one app host (playbooks/exec.yml, the host program's `exec`: slipway_core.host.one_off).

- The host: --host H, which must be an app host of the environment (the services' colours run only there), else
  its first app host in inventory order (one VM: its one host); the hosts' roles are the playbooks' rule on
  Ansible's reading of the inventory (slipway.app_hosts). The CLI always passes the host it chose.
- Checked before any host is touched: the environment, the service, the host (an app host), the
  timeout and the command (argv after `--`, never a shell line; the contract's rules). The command reaches the
  playbook base64-encoded, so that Ansible never templates an argument (`{{` in a command stays text).
- The release's environment and secrets travel as in a rollout: rendered by the role from the inventory (vault),
  sent on the host program's stdin by a no_log task, handed to `docker run` in the docker CLI's environment (`-e
  NAME`). No secret is on a command line, in the task events or in ansible-runner's artifacts.
- The command runs without a TTY and without stdin; its output is captured on the host (the last MiB of each
  stream) and comes back in the run's stats (`slipway_exec`). Text mode prints the command's stdout on stdout
  and its stderr, then one `slipway exec ...` line, on stderr; --json prints the report with the record.
- Exit status: the command's own once it ran (timed out: 124, its container removed); when it did not run, the
  CLI's codes: 2 refused before any host, 3 it could not run (unreachable host, no live release, docker could
  not start the container). See docs/cli-json.md for telling the two apart.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from slipway import app_hosts
from slipway.exitcodes import ExitCode, InputError
from slipway.results import Decision
from slipway.validation import Environment
from slipway_core import contract, operator_commands

EXEC_KEY = "slipway_exec"  # what playbooks/exec.yml reports: one record per host that ran (or refused) the command
RAN, TIMED_OUT = "ran", "timed-out"
TEXT_KEYS = ("host", "service", "host_result", "colour", "version", "image", "stdout", "stderr", "message")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", required=True, help="the service whose live release runs the command")
    parser.add_argument(
        "--host", help="the app host to run it on (default: the environment's first app host, in inventory order)"
    )
    parser.add_argument(
        "--timeout",
        default=str(operator_commands.EXEC_TIMEOUT),
        help=f"seconds the command may run (default {operator_commands.EXEC_TIMEOUT}); then it is stopped, exit "
        f"status {operator_commands.EXEC_TIMED_OUT}",
    )
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ...", help="the command and its arguments")


def command_of(args: argparse.Namespace) -> list[str]:
    argv = list(getattr(args, "argv", None) or [])
    return argv[1:] if argv[:1] == ["--"] else argv


def extravars(
    args: argparse.Namespace, env: Environment, environ: Mapping[str, str], vault_password: str | None
) -> dict[str, str]:
    """playbooks/exec.yml's variables for `slipway exec`, the app host chosen; bad input refused (exit 2) before any
    host."""
    if args.command != "exec":
        return {}
    try:
        argv = operator_commands.check_exec_command(command_of(args))
        seconds = operator_commands.check_exec_timeout(args.timeout)
    except contract.InputRefused as exc:
        raise InputError(str(exc)) from None
    roles = app_hosts.read_roles(env.directory.parent.parent, env.name, environ, vault_password)
    return {
        "slipway_exec_command_b64": base64.b64encode(json.dumps(argv).encode()).decode(),
        "slipway_exec_timeout": str(math.ceil(seconds)),
        "slipway_exec_host": app_hosts.pick(roles, env.name, args.host)[0],
    }


def _record(item: Mapping[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {key: str(item.get(key) or "") for key in TEXT_KEYS}
    command = item.get("command")
    record["command"] = [str(a) for a in command] if isinstance(command, list) else []
    code = item.get("exit_code")
    record["exit_code"] = code if isinstance(code, int) and not isinstance(code, bool) else None
    for flag in ("timed_out", "truncated", "config_differs"):
        record[flag] = item.get(flag) is True
    return record


def records(artifact_data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The `slipway_exec` records, typed, the output kept whole (the host cut it at a MiB per stream)."""
    raw = artifact_data.get(EXEC_KEY) or []
    return [_record(item) for item in raw if isinstance(item, Mapping)] if isinstance(raw, list) else []


def _what(record: Mapping[str, Any]) -> str:
    return (
        f"`{' '.join(record['command'])[:200]}` on {record['host']} ({record['service']} {record['version']}, "
        f"{record['colour']})"
    )


def decide(decision: Decision, found: list[dict[str, Any]]) -> Decision:
    """`ran` (or `timed-out`) with the command's exit status as the code when the host ran the command; otherwise
    why it did not (exit 3), or the run's own decision (unreachable, cancelled, Ansible failed)."""
    ran = [r for r in found if r["host_result"] == RAN and r["exit_code"] is not None]
    if ran and decision.code == ExitCode.OK:
        record = ran[0]
        if record["timed_out"]:
            return Decision(record["exit_code"], TIMED_OUT, f"{_what(record)} was stopped: {record['message']}")
        return Decision(record["exit_code"], RAN, f"{_what(record)} exited {record['exit_code']}")
    refused = [r for r in found if r["host_result"] != RAN]
    if refused and decision.code in (ExitCode.OK, ExitCode.NEEDS_PERSON):
        record = refused[0]
        return Decision(
            ExitCode.NEEDS_PERSON, "needs-person", f"{record['host']}: the command did not run: {record['message']}"
        )
    if decision.code == ExitCode.OK:
        return Decision(ExitCode.NEEDS_PERSON, "needs-person", "the host reported no result of the command")
    return decision


def write(
    report: dict[str, Any], as_json: bool, out: TextIO, err: TextIO, redact: Callable[[str], str]
) -> None:
    """--json: the report (its exit_code is the command's once it ran). Text: the command's stdout on `out`, its
    stderr and then one line of slipway's own on `err`."""
    if as_json:
        out.write(redact(json.dumps(report, indent=2, sort_keys=True)) + "\n")
        out.flush()
        return
    for record in report["records"][:1]:
        out.write(redact(record["stdout"]))
        out.flush()
        err.write(redact(record["stderr"]))
    if report["outcome"] == "bad-input":  # said already, on its own `slipway: error:` line
        return
    notes = [r["message"] for r in report["records"][:1] if r["message"] and report["outcome"] == RAN]
    err.write(redact(f"slipway exec {report['env']}: {report['outcome']} - {report['reason']}\n"))
    for line in [*notes, *report["errors"][:10]]:
        err.write(redact(f"  {line}\n"))
    err.flush()
