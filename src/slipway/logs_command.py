"""`slipway logs --env E --service S [--host H] [--colour C] [--since T] [--tail N] [--follow] [--timestamps]`: the
docker logs of a service's live colour (or --colour) on each app host of the environment (the hosts that run the
services' colours: the groups `<env>_app`, or the one host of a one-VM environment; slipway.app_hosts reads them as
the playbooks do).

One design for every form, follow or not: no playbook, a stream per host over slipway.logs_transport (ssh or
docker exec, built from Ansible's own reading of the inventory), running the host program's `logs` command, which
picks the container from the host's state and runs `docker logs` there. Lines arrive as docker writes them; the
container's stdout goes to stdout, its stderr (and the host program's own `slipway-release:` lines) to stderr.

- Checked before any host is touched: the environment, the service, --host (an app host of the environment),
  --since (docker's forms: a duration, a Unix time, an RFC 3339 date or time), --tail (a number or all), the
  secrets and pinned host keys as for every command, and that each host's connection can be followed (ssh, docker
  or local; passwordless sudo).
- Several app hosts: all of them at once, each line prefixed `<host> | `; --host picks one (no prefix then).
- --follow runs until Ctrl-C (SIGINT) or SIGTERM: the streams' stdin is closed (the host program stops its
  `docker logs` when it sees that), then each transport gets SIGTERM, SIGKILL 2 s later; exit 0.
- --json: one JSON object per line, {"host", "stream": "stdout"|"stderr", "line"}; a refusal is the usual error
  document (docs/cli-json.md).
- Exit: 0 when every host's stream ended well (or was stopped by Ctrl-C), 2 bad input (nothing was touched),
  3 a host could not be read (unreachable, no live release or no such container there, another build of the
  host program: `slipway status --env E` installs this one); the reason names each host.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, TextIO

from slipway import app_hosts, logs_transport
from slipway.cli_json import usage_error
from slipway.exitcodes import ExitCode, InputError
from slipway.known_hosts import check_host_keys
from slipway.secrets import SSH_PRIVATE_KEY, VAULT_PASSWORD, Redactor, Secrets, check_required
from slipway.validation import check_service, find_project_dir, load_environment
from slipway_core import build, contract, operator_commands

STOP_GRACE = 2.0  # seconds between closing a stream's stdin (and SIGTERM) and SIGKILL
OUTDATED = contract.EXIT_OUTDATED
SSH_FAILED = 255
PROGRAM_HEADER = b"slipway-release: logs of "  # the host program's first line: which container (not an error)


def add_parser(sub: Any, common: argparse.ArgumentParser, epilog: str) -> None:
    text = "the docker logs of a service's live colour on each app host (streams; --follow until Ctrl-C)"
    parser = sub.add_parser(
        "logs", parents=[common], help=text, description=__doc__, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--service", required=True, help="the service whose container to read")
    parser.add_argument("--host", help="only this app host (default: every app host, lines prefixed)")
    parser.add_argument("--colour", choices=contract.COLOURS, help="this colour's container instead of the live one")
    parser.add_argument("--since", help="e.g. 10m, 1h30m, 2026-12-02T20:15:00Z, 1767225600 (docker's forms)")
    parser.add_argument("--tail", help="lines from the end of the log: a number or all (default: all)")
    parser.add_argument("--follow", "-f", action="store_true", help="keep streaming new lines until Ctrl-C")
    parser.add_argument("--timestamps", action="store_true", help="docker's timestamp before each line")


@dataclass(frozen=True)
class Plan:
    project: Path
    env: str
    service: str
    endpoints: list[logs_transport.Endpoint]
    options: list[str]
    secrets: Secrets


def plan(args: argparse.Namespace, environ: Mapping[str, str]) -> Plan:
    """Every check that needs no host; InputError with what to change."""
    project = args.project_dir.resolve() if args.project_dir is not None else find_project_dir(Path.cwd())
    if not (project / "inventories").is_dir():
        raise InputError(f"--project-dir {project}: no inventories/ there")
    env = load_environment(project, args.env)
    service = check_service(env, args.service)
    options: list[str] = []
    try:
        if args.since is not None:
            options += ["--since", operator_commands.check_since(args.since)]
        if args.tail is not None:
            options += ["--tail", operator_commands.check_tail(args.tail)]
    except contract.InputRefused as exc:
        raise InputError(str(exc)) from None
    if args.colour:
        options += ["--colour", args.colour]
    if args.follow:
        options += ["--follow", "--until-eof"]
    if args.timestamps:
        options.append("--timestamps")
    secrets = Secrets.from_environ(environ)
    check_required(env, secrets, environ)
    vault = secrets.get(VAULT_PASSWORD)
    found = logs_transport.read_hosts(project, env.name, environ, vault)
    wanted = app_hosts.pick(app_hosts.roles_of(found, project, env.name), env.name, args.host)
    check_host_keys(env, environ, vault)
    by_name = {e.name: e for e in logs_transport.endpoints(found)}
    endpoints = [by_name[name] for name in wanted if name in by_name]
    if len(endpoints) != len(wanted):
        raise InputError(f"Ansible's inventory lists no host of {env.name} named "
                         f"{', '.join(name for name in wanted if name not in by_name)}")
    for endpoint in endpoints:
        logs_transport.check(endpoint)
    return Plan(project, env.name, service, endpoints, options, secrets)


@dataclass
class _Output:
    """Writes the streams' lines to the CLI's stdout and stderr, one line at a time, prefixed or as JSON."""

    out: TextIO
    err: TextIO
    prefix: bool
    as_json: bool
    redact: Callable[[str], str]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def line(self, host: str, stream: str, raw: bytes) -> None:
        text = self.redact(raw.decode("utf-8", "replace").rstrip("\r\n"))
        with self.lock:
            if self.as_json:
                self.out.write(json.dumps({"host": host, "stream": stream, "line": text}) + "\n")
                self.out.flush()
                return
            target = self.out if stream == "stdout" else self.err
            target.write(f"{host} | {text}\n" if self.prefix else text + "\n")
            target.flush()


def _pump(pipe: IO[bytes], host: str, stream: str, output: _Output, last: dict[str, str]) -> None:
    for raw in iter(pipe.readline, b""):
        if stream == "stderr" and raw.startswith(b"slipway-release: ") and not raw.startswith(PROGRAM_HEADER):
            last[host] = raw.decode("utf-8", "replace").strip()  # the host program's own error
        output.line(host, stream, raw)
    pipe.close()


def _why(endpoint: logs_transport.Endpoint, code: int, said: str, env: str) -> str:
    if code == OUTDATED:
        return (
            f"{endpoint.name}: its host program is another build than this slipway's; `slipway status --env {env}` "
            "installs this one, then run logs again"
        )
    if said:
        return f"{endpoint.name}: {said.removeprefix('slipway-release: ').removeprefix('logs: ')}"
    if code == SSH_FAILED and endpoint.connection in logs_transport.SSH:
        return f"{endpoint.name}: ssh failed (exit 255; its message is above)"
    return f"{endpoint.name}: the stream ended with exit status {code}"


def stream(  # noqa: PLR0917 - the plan, where to write, when to stop
    plan_: Plan, environ: Mapping[str, str], as_json: bool, out: TextIO, err: TextIO, stop: threading.Event,
           popen: Callable[..., subprocess.Popen[bytes]] = subprocess.Popen) -> list[str]:
    """Run one transport per host until each ends or `stop` is set; the problems, one line per host."""
    redact = Redactor(plan_.secrets.values.values())
    output = _Output(out, err, prefix=len(plan_.endpoints) > 1, as_json=as_json, redact=redact)
    ident = build.build()[1]
    last: dict[str, str] = {}
    with logs_transport.ssh_agent(plan_.secrets.get(SSH_PRIVATE_KEY), environ) as env:
        running: list[tuple[logs_transport.Endpoint, subprocess.Popen[bytes], list[threading.Thread]]] = []
        for endpoint in plan_.endpoints:
            remote = logs_transport.remote_command(endpoint, ident, plan_.service, plan_.options)
            proc = popen(
                logs_transport.argv(endpoint, remote), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=env, start_new_session=True,  # Ctrl-C reaches only the CLI
            )
            pumps = [
                threading.Thread(target=_pump, args=(pipe, endpoint.name, name, output, last), daemon=True)
                for pipe, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))
            ]
            for pump in pumps:
                pump.start()
            running.append((endpoint, proc, pumps))
        while not stop.is_set() and any(proc.poll() is None for _, proc, _ in running):
            stop.wait(0.1)
        stopped = stop.is_set()
        if stopped:
            _stop([proc for _, proc, _ in running])
        problems = []
        for endpoint, proc, pumps in running:
            code = proc.wait()
            for pump in pumps:
                pump.join(timeout=5)
            if code != 0 and not stopped:
                problems.append(redact(_why(endpoint, code, last.get(endpoint.name, ""), plan_.env)))
        return problems


def _stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """Close each stream's stdin (the host program then stops docker logs), SIGTERM, and SIGKILL after the grace."""
    for proc in procs:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
    deadline = time.monotonic() + STOP_GRACE / 2
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.05)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + STOP_GRACE
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.05)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()


def _error(  # noqa: PLR0917 - one error, both streams
    args: argparse.Namespace, code: ExitCode, outcome: str, message: str, out: TextIO, err: TextIO) -> int:
    err.write(f"slipway: error: {message}\n")
    err.flush()
    if args.json:
        doc = {**usage_error(message, "logs"), "env": str(args.env)[:40], "exit_code": int(code), "outcome": outcome}
        out.write(json.dumps(doc, indent=2) + "\n")
        out.flush()
    return int(code)


def run(args: argparse.Namespace, environ: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    """`slipway logs`: the exit code of the module docstring."""
    redact = Redactor(Secrets.from_environ(environ).values.values())
    try:
        checked = plan(args, environ)
    except InputError as exc:
        return _error(args, ExitCode.BAD_INPUT, "bad-input", redact(str(exc)), out, err)
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        problems = stream(checked, environ, args.json, out, err, stop)
    except InputError as exc:  # ssh-add refused the key
        return _error(args, ExitCode.BAD_INPUT, "bad-input", redact(str(exc)), out, err)
    except OSError as exc:
        return _error(args, ExitCode.NEEDS_PERSON, "needs-person", f"cannot start the transport: {exc}", out, err)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    if problems:
        return _error(args, ExitCode.NEEDS_PERSON, "needs-person", "; ".join(problems), out, err)
    return int(ExitCode.OK)
