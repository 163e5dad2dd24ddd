"""`slipway`: validate, run one playbook through ansible-runner, report, notify, exit with a known code."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

from slipway import audit, exec_command, job_command, logs_command, notify, promotion, report, tags, unlocking
from slipway import secrets as names
from slipway.arguments import parse_args
from slipway.events import EventHandler
from slipway.exitcodes import ExitCode, InputError
from slipway.known_hosts import check_host_keys
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
from slipway.status_view import decide as decide_status
from slipway.validation import (
    PLAYBOOKS,
    check_request,
    find_project_dir,
    load_environment,
    playbook_path,
)

RunFn = Callable[[PlaybookRun, EventCallback, threading.Event], RunnerOutcome]
ROLLOUT_COMMANDS = ("deploy", "rollback")
NOTIFY_COMMANDS = ("provision", "deploy", "rollback")

@dataclass(frozen=True)
class Streams:
    out: TextIO
    err: TextIO


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
    check_required(env, secrets, environ)
    check_host_keys(env, environ, secrets.get(VAULT_PASSWORD))  # Ansible's inventory, ssh's known_hosts files
    if secrets.get(VAULT_PASSWORD) and not os.access(project / VAULT_CLIENT, os.X_OK):
        raise InputError(
            f"{VAULT_CLIENT} is missing or not executable in {project}; it hands Ansible the vault password"
        )
    extravars = {"env": env.name, **audit.extravars(audit.collect(environ, project, env.name))}
    extravars.update(unlocking.extravars(args))
    extravars.update(exec_command.extravars(args, env, environ, secrets.get(VAULT_PASSWORD)))
    extravars.update(job_command.extravars(args))
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
        extravars={**plan.extravars, "slipway_run_id": run_id, "slipway_unlock_reason": unlocking.CANCELLED},
        secrets=plan.secrets,
        environ=environ,
        ident=f"{run_id}-unlock",
    )
    outcome = run(unlock, lambda event: True, threading.Event())
    word = "released" if outcome.status == "successful" else "NOT released (see docs/runbook.md, stale lock)"
    handler.facts.errors.append(f"cancelled: locks of run {run_id} {word}")


@dataclass
class _Attempt:
    """What main()'s last resort needs to know about the run that raised."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    secrets: Secrets | None = None  # the checked secrets, once the plan passed (webhooks are https)
    reported: bool = False  # the report went to stdout
    notified: bool = False


def _one_line(exc: BaseException) -> str:
    return _line(f"{exc.__class__.__name__}: {exc}")


def _line(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _needs_person(decision: Decision, problems: Sequence[str]) -> Decision:
    """An unexpected error makes any outcome exit 3; the reason keeps what the run itself ended with."""
    return Decision(
        ExitCode.NEEDS_PERSON,
        "needs-person",
        _line(f"{'; '.join(problems)} (the run itself: {decision.outcome} - {decision.reason})", 1000),
    )


def _notifies(args: argparse.Namespace) -> bool:
    return (
        args.command in NOTIFY_COMMANDS
        and not getattr(args, "no_notify", False)
        and not getattr(args, "check", False)
    )


def _conclude(
    rep: report.Report,
    *,
    args: argparse.Namespace,
    streams: Streams,
    environ: Mapping[str, str],
    redact: Callable[[str], str],
    post: notify.Post,
    attempt: _Attempt,
) -> int:
    """Print the report, write the GitHub summary and outputs, notify. A GitHub file that cannot be written
    makes the run exit 3 (the reason says so), and the notifications go out all the same."""
    unwritable = report.unwritable_github_files(environ)
    problems = [redact(p) for p in unwritable.values()]
    for problem in problems:
        streams.err.write(f"slipway: error: {problem}\n")
    if problems:
        rep = dataclasses.replace(
            rep, decision=_needs_person(rep.decision, problems), errors=[*rep.errors, *problems]
        )
    attempt.reported = True
    code = int(rep.decision.code)  # exec: the command's own exit status once it ran (slipway.exec_command)
    if rep.command == "exec":  # the command's output on stdout and stderr
        exec_command.write(rep.as_dict(), args.json, streams.out, streams.err, redact)
    else:
        streams.out.write(redact(report.to_json(rep) + "\n" if args.json else report.to_text(rep)))
        streams.out.flush()
    writable = {k: v for k, v in environ.items() if k not in unwritable}
    late = [redact(p) for p in report.write_github(rep, writable, redact)]  # the check passed: a full disk, say
    for problem in late:
        streams.err.write(f"slipway: error: {problem}\n")
    if attempt.secrets is not None and _notifies(args):
        attempt.notified = True
        for warning in notify.send_all(rep, attempt.secrets, post):
            streams.err.write(f"slipway: warning: {warning}\n")
    return int(ExitCode.NEEDS_PERSON) if late else code


def _run_command(
    *,
    args: argparse.Namespace,
    environ: Mapping[str, str],
    streams: Streams,
    run: RunFn,
    post: notify.Post,
    started: float,
    attempt: _Attempt,
) -> int:
    run_id = attempt.run_id
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
        return _conclude(
            rep, args=args, streams=streams, environ=environ, redact=redact, post=post, attempt=attempt
        )
    attempt.secrets = plan.secrets
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
    problems: list[str] = []
    cancelled = threading.Event()
    restore = _install_signals(cancelled)
    try:
        streams.err.write(f"slipway {args.command} {plan.extravars['env']} (run {run_id})\n")
        try:
            outcome = run(request, handler, cancelled)
        except Exception as exc:  # exit 3 below, with whatever the run reported before it
            problems.append(redact(f"unexpected error while running {plan.playbook}: {_one_line(exc)}"))
            outcome = RunnerOutcome("error", 0, False)
        handler.finish()
        handler.facts.status = outcome.status
        handler.facts.rc = outcome.rc
        handler.facts.cancelled = outcome.cancelled or cancelled.is_set()
        if handler.facts.cancelled and args.command in ROLLOUT_COMMANDS:
            _unlock(plan, run_id, run, handler, environ)
    finally:
        restore()
    return _finish(
        args=args,
        facts=handler.facts,
        phases=handler.phases,
        problems=problems,
        started=started,
        plan=plan,
        environ=environ,
        streams=streams,
        post=post,
        redact=redact,
        attempt=attempt,
    )


def _finish(
    *,
    args: argparse.Namespace,
    facts: RunFacts,
    phases: list[tuple[str, str, float]],
    problems: list[str],
    started: float,
    plan: _Plan,
    environ: Mapping[str, str],
    streams: Streams,
    post: notify.Post,
    redact: Callable[[str], str],
    attempt: _Attempt,
) -> int:
    results = parse_results(facts.artifact_data)
    decision = decide(facts, results, rollout=args.command in ROLLOUT_COMMANDS)
    if problems and (results or facts.saw_stats):  # the playbook got to its end: say what it reported
        decision = _needs_person(decision, problems)
    elif problems:
        decision = Decision(ExitCode.NEEDS_PERSON, "needs-person", "; ".join(problems))
    key = {"status": STATUS_KEY, "history": HISTORY_KEY, "unlock": unlocking.UNLOCKED_KEY}.get(args.command)
    records = parse_records(facts.artifact_data, key) if key else []
    if args.command == "status":  # exit 4 unless every requested service is healthy and serving
        decision = decide_status(decision, records, plan.service)
    if args.command == "exec":  # the command's record, its output whole
        records = exec_command.records(facts.artifact_data)
        decision = exec_command.decide(decision, records)
    if args.command == "job":  # the host's record of the run
        records = job_command.records(facts.artifact_data)
        decision = job_command.decide(decision, records)
    rep = report.Report(
        command=args.command,
        env=plan.extravars["env"],
        run_id=attempt.run_id,
        decision=decision,
        duration=round(time.monotonic() - started, 1),
        results=results,
        records=records,
        phases=phases,
        errors=[*facts.errors, *problems],
        run_url=report.run_url(environ),
    )
    return _conclude(rep, args=args, streams=streams, environ=environ, redact=redact, post=post, attempt=attempt)


def _https_only(secrets: Secrets) -> Secrets:
    """Secrets not checked by the plan: webhooks that are not https:// are left out (as the plan refuses them)."""
    webhooks = (names.FEISHU_WEBHOOK, names.DINGTALK_WEBHOOK, names.WECOM_WEBHOOK, names.SLACK_WEBHOOK)
    return Secrets(
        {k: v for k, v in secrets.values.items() if k not in webhooks or v.startswith("https://")}
    )


def _unexpected(
    exc: Exception,
    *,
    args: argparse.Namespace,
    environ: Mapping[str, str],
    streams: Streams,
    post: notify.Post,
    started: float,
    attempt: _Attempt,
) -> int:
    """The last resort: any error nothing else expected exits 3 with one line on stderr (never a traceback), the
    report where it can still be written, and the notifications unless they were sent already."""
    secrets = Secrets.from_environ(environ)
    redact = Redactor(secrets.values.values())
    reason = redact(f"unexpected error: {_one_line(exc)}")
    with contextlib.suppress(Exception):
        streams.err.write(f"slipway: error: {reason}\n")
        streams.err.flush()
    if args.command == "release":
        return int(ExitCode.NEEDS_PERSON)  # the line above is all there is
    decision = Decision(ExitCode.NEEDS_PERSON, "needs-person", reason)
    rep = report.Report(
        args.command, redact(str(args.env)[:40]), attempt.run_id, decision, round(time.monotonic() - started, 1)
    )
    if not attempt.reported:  # else a report is out already: the line above is added to it
        attempt.reported = True
        with contextlib.suppress(Exception):
            streams.out.write(redact(report.to_json(rep) + "\n" if args.json else report.to_text(rep)))
            streams.out.flush()
        with contextlib.suppress(Exception):
            for problem in report.write_github(rep, environ, redact):
                streams.err.write(f"slipway: error: {redact(problem)}\n")
    if not attempt.notified and _notifies(args):
        attempt.notified = True
        with contextlib.suppress(Exception):
            for warning in notify.send_all(rep, attempt.secrets or _https_only(secrets), post):
                streams.err.write(f"slipway: warning: {warning}\n")
    return int(ExitCode.NEEDS_PERSON)


def _release(args: argparse.Namespace, environ: Mapping[str, str], streams: Streams) -> int:
    if args.release_command != "next":  # record, check: the staging record of a tag (slipway.promotion)
        return promotion.run(args, environ, streams.out, streams.err)
    try:
        project = args.project_dir or (find_project_dir(Path.cwd()) if args.tags is None else Path.cwd())
        tag = _release_next(args, project)
    except InputError as exc:
        streams.err.write(f"slipway: error: {exc}\n")
        return int(ExitCode.BAD_INPUT)
    streams.out.write(f'{{"tag": "{tag}"}}\n' if args.json else f"{tag}\n")
    problem = report.append_github(environ, "GITHUB_OUTPUT", f"tag={tag}\n")
    if problem:
        streams.err.write(f"slipway: error: {problem}\n")
        return int(ExitCode.NEEDS_PERSON)
    return int(ExitCode.OK)


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
    args = parse_args(argv, streams.out, streams.err)  # argparse errors exit 2 (with --json, a JSON error too)
    attempt = _Attempt()
    try:
        if args.command == "release":
            return _release(args, environ, streams)
        if args.command == "logs":  # no playbook: a stream from each host (slipway.logs_command)
            return logs_command.run(args, environ, streams.out, streams.err)
        return _run_command(
            args=args, environ=environ, streams=streams, run=run, post=post, started=started, attempt=attempt
        )
    except Exception as exc:  # the last resort: exit 3 and one line, never a traceback
        return _unexpected(
            exc, args=args, environ=environ, streams=streams, post=post, started=started, attempt=attempt
        )
