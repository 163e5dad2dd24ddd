"""Bad input sent through every entry point: the cases, how each is run, and what the contract says it must give.

One list for tests/playbooks/test_bad_input.py (which asserts) and tests/playbooks/bad_input_table.py (which prints the
Markdown table). Each value goes to `slipway` (the console script) and to `ansible-playbook` in both extra-vars
forms, key=value (`-e version=...`) and JSON (`-e '{"version": ...}'`); the expected message is computed by the
contract's own functions (slipway_core.contract), never written out.

Nothing here may reach a host: every case must be refused by the CLI's checks or by the playbooks' preflight task
on localhost. As a safety net, should a case pass by mistake, the runs point the local environment's host at a
container that does not exist (SLIPWAY_LOCAL_HOST) behind a Docker socket that does not exist (DOCKER_HOST).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ansible.parsing.splitter import parse_kv

from slipway import validation
from slipway_core import contract

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the virtualenv's ansible-playbook and slipway
ENV = "local"
SERVICE = "notes-api"
PREFLIGHT_TASK = yaml.safe_load((PROJECT / "playbooks/preflight.yml").read_text(encoding="utf-8"))[0]["tasks"][0][
    "name"
]
KNOWN_ENVS = validation.known_envs(PROJECT)
KNOWN_SERVICES = validation.load_environment(PROJECT, ENV).services
SAFE_ENVIRON = {
    "SLIPWAY_LOCAL_HOST": "slipway-bad-input-no-such-host",
    "DOCKER_HOST": "unix:///nonexistent/slipway-bad-input/docker.sock",
    "ANSIBLE_NOCOLOR": "1",
    "LC_ALL": "C.UTF-8",
}


@dataclass(frozen=True)
class Case:
    """One bad value for one request variable (`env`, `service` or `version`)."""

    var: str
    value: Any
    commands: tuple[str, ...] = ("deploy",)  # slipway commands = playbooks it is sent through
    key_value: bool = True  # also sent as -e var=value (a string only), not only as JSON
    cli: bool = True  # also sent through slipway (a string only)


CASES: tuple[Case, ...] = (
    # versions (with service=notes-api)
    Case("version", "latest"),
    Case("version", "1.2"),
    Case("version", "v1.2.3 --extra-vars=x"),
    Case("version", "v1.2.3\n"),
    Case("version", "v1.2.3; rm -rf /"),
    Case("version", "v1.2.3-ß"),
    Case("version", "-v1"),
    Case("version", "=--"),
    Case("version", "v" * 10_000),
    Case("version", 1.2, key_value=False, cli=False),  # JSON only: a number is no tag
    # services
    Case("service", "notes-api ", ("deploy", "rollback")),
    Case("service", "nope", ("deploy", "rollback", "status")),
    Case("service", "a;b", ("deploy", "status")),
    Case("service", "nötes"),
    Case("service", "--extra-vars=x"),
    Case("service", "a" * 10_000),
    # environments
    Case("env", "local "),
    Case("env", "nosuch"),
)


@dataclass(frozen=True)
class Row:
    """One run: a case through one entry point in one form."""

    case: Case
    entry: str  # "slipway deploy" or "deploy.yml"
    form: str  # "--option=value", "key=value" or "JSON"
    argv: tuple[str, ...]

    @property
    def id(self) -> str:
        value = contract.shown(self.case.value)
        return f"{self.case.var}={value}|{self.entry}|{self.form}"


@dataclass(frozen=True)
class Outcome:
    """What a run gave: its exit code, the refusal's message (or the output's tail), and where it happened."""

    exit: int
    message: str
    failed: tuple[tuple[str, str], ...] = ()  # ansible-playbook: (task, host) of every failed result
    recap_hosts: tuple[str, ...] = ()  # ansible-playbook: the hosts of the PLAY RECAP (the stats)


def request(case: Case) -> dict[str, Any]:
    """The request a case makes: the bad value, and what else it needs to reach the rule (env, a service)."""
    values: dict[str, Any] = {"env": ENV}
    if case.var == "version":
        values["service"] = SERVICE
    values[case.var] = case.value
    return values


def expected(case: Case, command: str) -> str:
    """The contract's message for the case: what every entry point must print, word for word."""
    values = request(case)
    try:
        contract.check_env_name(values["env"], KNOWN_ENVS)
        contract.check_request(values.get("service"), values.get("version") if command == "deploy" else None,
                               KNOWN_SERVICES, contract.registry_of(values["env"]), rollback=command == "rollback")
    except contract.InputRefused as refused:
        return str(refused)
    raise AssertionError(f"{case} is not bad input: the contract accepts it")


def expected_key_value(case: Case, command: str) -> str:
    """The same through `-e key=value`: each -e is first checked as typed (contract.check_raw_extra_var)."""
    for raw in key_value_args(case):
        try:
            contract.check_raw_extra_var(raw, parse_kv(raw), KNOWN_ENVS)
        except contract.InputRefused as refused:
            return str(refused)
    return expected(case, command)


def key_value_args(case: Case) -> list[str]:
    return [f"{key}={value}" for key, value in request(case).items()]


def rows(cases: Iterable[Case] = CASES) -> list[Row]:
    out: list[Row] = []
    for case in cases:
        for command in case.commands:
            values = request(case)
            if case.cli:
                options = [f"--{key}={value}" for key, value in values.items()]
                out.append(Row(case, f"slipway {command}", "--option=value", (str(BIN / "slipway"), command, *options)))
            playbook = (str(BIN / "ansible-playbook"), f"playbooks/{command}.yml")
            if case.key_value:
                args = [arg for raw in key_value_args(case) for arg in ("-e", raw)]
                out.append(Row(case, f"{command}.yml", "key=value", (*playbook, *args)))
            out.append(Row(case, f"{command}.yml", "JSON", (*playbook, "-e", json.dumps(values))))
    return out


def expected_for(row: Row) -> str:
    command = row.entry.removeprefix("slipway ").removesuffix(".yml")
    return expected_key_value(row.case, command) if row.form == "key=value" else expected(row.case, command)


def _environ() -> dict[str, str]:
    """The caller's environment without GitHub's or Slipway's variables (no secret, no step summary)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "SLIPWAY_"))}
    return {**keep, **SAFE_ENVIRON}


def run(row: Row) -> Outcome:
    if row.entry.startswith("slipway"):
        done = subprocess.run(row.argv, cwd=PROJECT, capture_output=True, text=True, env=_environ(),
                              timeout=120, check=False)
        errors = [line.removeprefix("slipway: error: ") for line in done.stderr.split("\n")
                  if line.startswith("slipway: error: ")]
        # a message can hold a line break ('v1.2.3\n' is shown as such, escaped): one error line each
        return Outcome(done.returncode, errors[0] if errors else (done.stdout + done.stderr)[-500:])
    done = subprocess.run(row.argv, cwd=PROJECT, capture_output=True, text=True,
                          env={**_environ(), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}, timeout=120,
                          check=False)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        return Outcome(done.returncode, (done.stdout + done.stderr)[-500:])
    failed = [(task["task"]["name"], host, str(res.get("msg", "")))
              for play in report.get("plays", []) for task in play.get("tasks", [])
              for host, res in task.get("hosts", {}).items() if res.get("failed") or res.get("unreachable")]
    return Outcome(
        done.returncode,
        failed[0][2] if failed else done.stderr[-500:],
        tuple((task, host) for task, host, _ in failed),
        tuple(sorted(report.get("stats", {}))),
    )


def run_all(all_rows: Sequence[Row], workers: int = 4) -> dict[str, Outcome]:
    """Every row, a few at a time (each run is a Python start and about a second of Ansible), by row id."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip((row.id for row in all_rows), pool.map(run, all_rows), strict=True))


def markdown(all_rows: Sequence[Row], outcomes: dict[str, Outcome]) -> str:
    """The table: value, entry point, form, exit code, message."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", "\\n")

    lines = ["| value | entry point | form | exit | message |", "|---|---|---|---|---|"]
    for row in all_rows:
        outcome = outcomes[row.id]
        value = f"{row.case.var}={contract.shown(row.case.value)}"
        lines.append(f"| `{cell(value)}` | {row.entry} | {row.form} | {outcome.exit} | {cell(outcome.message)} |")
    return "\n".join(lines)
