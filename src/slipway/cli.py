"""`slipway`: validate, run one playbook through ansible-runner, report, notify, exit with a known code."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

from slipway import __version__, notify, report, tags
from slipway.events import EventHandler
from slipway.exitcodes import HELP, ExitCode, InputError
from slipway.results import (
    HISTORY_KEY,
    STATUS_KEY,
    Decision,
    RunFacts,
    decide,
    parse_records,
    parse_results,
)
from slipway.runner import VAULT_CLIENT, EventCallback, PlaybookRun, RunnerOutcome, run_playbook
from slipway.secrets import VAULT_PASSWORD, Redactor, Secrets, check_required
from slipway.validation import (
    PLAYBOOKS,
    check_request,
    find_project_dir,
    load_environment,
    playbook_path,
)
from slipway_core.contract import PHASES

RunFn = Callable[[PlaybookRun, EventCallback, threading.Event], RunnerOutcome]
ROLLOUT_COMMANDS = ("deploy", "rollback")
NOTIFY_COMMANDS = ("provision", "deploy", "rollback")

DESCRIPTION = f"""\
Provision Docker hosts and roll services out blue-green (Ansible through ansible-runner).
Everything is checked before any host is touched. Secrets come only from SLIPWAY_* environment variables
(see docs/runbook.md); rollout phases: {", ".join(PHASES)}.
"""


@dataclass(frozen=True)
class Streams:
    out: TextIO
    err: TextIO


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slipway",
        description=DESCRIPTION,
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"slipway {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--env", required=True, help="environment: a directory with hosts.yml under inventories/"
    )
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    common.add_argument(
        "--project-dir", type=Path, help="the operations repository (default: found from the cwd)"
    )
    run_opts = argparse.ArgumentParser(add_help=False)
    run_opts.add_argument(
        "--artifacts-dir", type=Path, help="copy ansible-runner's artifacts here (for debugging)"
    )
    run_opts.add_argument("--no-notify", action="store_true", help="send no webhook notification")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            parents=[common, run_opts],
            help=text,
            description=text,
            epilog=HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    add("provision", f"provision the environment's hosts ({PLAYBOOKS['provision']})")
    deploy = add("deploy", f"converge services to the inventory's versions ({PLAYBOOKS['deploy']})")
    deploy.add_argument("--service", help="deploy only this service")
    deploy.add_argument(
        "--version", dest="release", metavar="VERSION", help="image tag to deploy (needs --service)"
    )
    deploy.add_argument(
        "--check",
        action="store_true",
        help="plan only: which services would be deployed, from which version to which; changes nothing",
    )
    rollback = add("rollback", f"switch a service back to its previous release ({PLAYBOOKS['rollback']})")
    rollback.add_argument("--service", required=True, help="the service to roll back")
    status = add("status", f"live colour, version and health per service and host ({PLAYBOOKS['status']})")
    status.add_argument("--service", help="only this service")
    history = add("history", f"the release log ({PLAYBOOKS['history']})")
    history.add_argument("--service", help="only this service")

    release = sub.add_parser(
        "release", help="release tags", epilog=HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    release_sub = release.add_subparsers(dest="release_command", required=True, metavar="SUBCOMMAND")
    nxt = release_sub.add_parser(
        "next",
        parents=[common],
        help="print the next release tag",
        description=tags.__doc__,
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    nxt.add_argument("--tag", help="production: the staging tag to promote")
    nxt.add_argument("--tags", help="comma-separated existing tags (default: `git tag --list 'v*'`)")
    return parser


def _release_next(args: argparse.Namespace, project: Path) -> str:
    existing = args.tags.split(",") if args.tags is not None else tags.git_tags(project)
    if args.env == "production":
        if not args.tag:
            raise InputError("release next --env production needs --tag <staging tag to promote>")
        return tags.next_production(existing, args.tag)
    if args.env == "staging":
        if args.tag:
            raise InputError("--tag is only for production; staging tags are computed from the latest tag")
        return tags.next_staging(existing)
    raise InputError(f"--env {args.env[:40]!r}: release tags exist for staging and production only")


def _install_signals(cancelled: threading.Event) -> Callable[[], None]:
    """SIGTERM/SIGINT (a cancelled GitHub job, Ctrl-C) set `cancelled`; the run stops at the next poll."""

    def handler(signum: int, frame: FrameType | None) -> None:
        cancelled.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


@dataclass(frozen=True)
class _Plan:
    project: Path
    playbook: str
    extravars: dict[str, str]
    secrets: Secrets
    service: str | None


def _plan(args: argparse.Namespace, environ: Mapping[str, str]) -> _Plan:
    """Every check that needs no host; raises InputError with what to change."""
    if args.project_dir is None:
        project = find_project_dir(Path.cwd())
    else:
        project = args.project_dir.resolve()
        if not (project / "inventories").is_dir():
            raise InputError(f"--project-dir {project}: no inventories/ there")
    env = load_environment(project, args.env)
    service = getattr(args, "service", None)
    release = getattr(args, "release", None)
    check_request(env, service, release, rollback=args.command == "rollback")
    playbook = playbook_path(project, args.command)
    secrets = Secrets.from_environ(environ)
    known_hosts = Path(environ.get("HOME", str(Path.home()))) / ".ssh" / "known_hosts"
    check_required(env, secrets, environ, known_hosts)
    if secrets.get(VAULT_PASSWORD) and not os.access(project / VAULT_CLIENT, os.X_OK):
        raise InputError(
            f"{VAULT_CLIENT} is missing or not executable in {project}; it hands Ansible the vault password"
        )
    extravars = {"env": env.name}
    if service is not None:
        extravars["service"] = service
    if release is not None:
        extravars["version"] = release
    return _Plan(project, str(playbook.relative_to(project)), extravars, secrets, service)


def _unlock(plan: _Plan, run_id: str, run: RunFn, handler: EventHandler, environ: Mapping[str, str]) -> None:
    """After a cancelled rollout: release the locks this run took (playbooks/unlock.yml), if it exists."""
    path = plan.project / PLAYBOOKS["unlock"]
    if not path.is_file():
        handler.facts.errors.append(
            f"cancelled: {PLAYBOOKS['unlock']} is missing; release the lock by hand (docs/runbook.md)"
        )
        return
    unlock = PlaybookRun(
        project=plan.project,
        playbook=PLAYBOOKS["unlock"],
        extravars={**plan.extravars, "slipway_run_id": run_id},
        secrets=plan.secrets,
        environ=environ,
        ident=f"{run_id}-unlock",
    )
    outcome = run(unlock, lambda event: True, threading.Event())
    word = "released" if outcome.status == "successful" else "NOT released (see docs/runbook.md, stale lock)"
    handler.facts.errors.append(f"cancelled: locks of run {run_id} {word}")


def _emit(
    rep: report.Report,
    args: argparse.Namespace,
    streams: Streams,
    environ: Mapping[str, str],
    redact: Callable[[str], str],
) -> None:
    streams.out.write(redact(report.to_json(rep) + "\n" if args.json else report.to_text(rep)))
    streams.out.flush()
    report.write_github(rep, environ, redact)


def _run_command(
    *,
    args: argparse.Namespace,
    environ: Mapping[str, str],
    streams: Streams,
    run: RunFn,
    post: notify.Post,
    started: float,
) -> int:
    run_id = uuid.uuid4().hex[:12]
    redact: Callable[[str], str] = Redactor(Secrets.from_environ(environ).values.values())
    try:
        plan = _plan(args, environ)
    except InputError as exc:
        message = redact(str(exc))
        streams.err.write(f"slipway: error: {message}\n")
        decision = Decision(ExitCode.BAD_INPUT, "bad-input", message)
        rep = report.Report(
            args.command, str(args.env)[:40], run_id, decision, round(time.monotonic() - started, 1)
        )
        _emit(rep, args, streams, environ, redact)
        return int(ExitCode.BAD_INPUT)
    handler = EventHandler(streams.err, environ.get("GITHUB_ACTIONS") == "true", redact)
    request = PlaybookRun(
        project=plan.project,
        playbook=plan.playbook,
        extravars={**plan.extravars, "slipway_run_id": run_id},
        secrets=plan.secrets,
        environ=environ,
        ident=run_id,
        check=bool(getattr(args, "check", False)),
        keep_artifacts=args.artifacts_dir,
    )
    cancelled = threading.Event()
    restore = _install_signals(cancelled)
    try:
        streams.err.write(f"slipway {args.command} {plan.extravars['env']} (run {run_id})\n")
        outcome = run(request, handler, cancelled)
        handler.finish()
        handler.facts.status = outcome.status
        handler.facts.cancelled = outcome.cancelled or cancelled.is_set()
        if handler.facts.cancelled and args.command in ROLLOUT_COMMANDS:
            _unlock(plan, run_id, run, handler, environ)
    finally:
        restore()
    return _finish(
        args=args,
        facts=handler.facts,
        phases=handler.phases,
        run_id=run_id,
        started=started,
        plan=plan,
        environ=environ,
        streams=streams,
        post=post,
        redact=redact,
    )


def _finish(
    *,
    args: argparse.Namespace,
    facts: RunFacts,
    phases: list[tuple[str, str, float]],
    run_id: str,
    started: float,
    plan: _Plan,
    environ: Mapping[str, str],
    streams: Streams,
    post: notify.Post,
    redact: Callable[[str], str],
) -> int:
    results = parse_results(facts.artifact_data)
    decision = decide(facts, results, rollout=args.command in ROLLOUT_COMMANDS)
    key = {"status": STATUS_KEY, "history": HISTORY_KEY}.get(args.command)
    records = parse_records(facts.artifact_data, key) if key else []
    rep = report.Report(
        command=args.command,
        env=plan.extravars["env"],
        run_id=run_id,
        decision=decision,
        duration=round(time.monotonic() - started, 1),
        results=results,
        records=records,
        phases=phases,
        errors=facts.errors,
        run_url=report.run_url(environ),
    )
    _emit(rep, args, streams, environ, redact)
    if args.command in NOTIFY_COMMANDS and not args.no_notify and not getattr(args, "check", False):
        for warning in notify.send_all(rep, plan.secrets, post):
            streams.err.write(f"slipway: warning: {warning}\n")
    return int(decision.code)


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    run: RunFn = run_playbook,
    post: notify.Post = notify.post_json,
    streams: Streams | None = None,
) -> int:
    """Entry point of the console script; returns the exit code (see exitcodes.HELP)."""
    started = time.monotonic()
    environ = os.environ if environ is None else environ
    streams = streams or Streams(sys.stdout, sys.stderr)
    args = build_parser().parse_args(argv)
    if args.command == "release":
        try:
            project = args.project_dir or (find_project_dir(Path.cwd()) if args.tags is None else Path.cwd())
            tag = _release_next(args, project)
        except InputError as exc:
            streams.err.write(f"slipway: error: {exc}\n")
            return int(ExitCode.BAD_INPUT)
        streams.out.write(f'{{"tag": "{tag}"}}\n' if args.json else f"{tag}\n")
        if environ.get("GITHUB_OUTPUT"):
            with Path(environ["GITHUB_OUTPUT"]).open("a", encoding="utf-8") as fh:
                fh.write(f"tag={tag}\n")
        return int(ExitCode.OK)
    return _run_command(args=args, environ=environ, streams=streams, run=run, post=post, started=started)
