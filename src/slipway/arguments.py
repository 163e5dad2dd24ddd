"""The `slipway` command line: its parser, and parsing that leaves no value a check does not expect."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from slipway import __version__, exec_command, job_command, logs_command, promotion, tags, unlocking
from slipway.cli_json import usage_error
from slipway.exitcodes import HELP
from slipway.validation import PLAYBOOKS
from slipway_core.contract import PHASES

DESCRIPTION = f"""\
Provision Docker hosts and roll services out blue-green (Ansible through ansible-runner).
Everything is checked before any host is touched. Secrets come only from SLIPWAY_* environment variables
(see docs/runbook.md); rollout phases: {", ".join(PHASES)}.
"""



class UsageError(Exception):
    """argparse refused the command line: `parser` is the (sub)parser that did, for its usage line."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse's parser, except that an error is raised (for parse_args to report), not printed and exited on.
    Subcommand parsers are of the same class (add_subparsers' default parser_class)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="slipway",
        description=DESCRIPTION,
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"slipway {__version__}")
    common = _Parser(add_help=False)
    common.add_argument(
        "--env", required=True, help="environment: a directory with hosts.yml under inventories/"
    )
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    common.add_argument(
        "--project-dir", type=Path, help="the operations repository (default: found from the cwd)"
    )
    run_opts = _Parser(add_help=False)
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
    rollback.add_argument(
        "--to", dest="release", metavar="VERSION",
        help="an older release kept on the hosts (default: the kept one, the release before the live one)",
    )
    status = add("status", f"live colour, version and health per service and host ({PLAYBOOKS['status']})")
    status.add_argument("--service", help="only this service")
    history = add("history", f"the release log ({PLAYBOOKS['history']})")
    history.add_argument("--service", help="only this service")
    unlocking.add_arguments(add("unlock", f"release a service's deploy lock, whoever holds it ({PLAYBOOKS['unlock']})"))
    exec_command.add_arguments(
        add("exec", f"run a command in a one-off container of a service's live release ({PLAYBOOKS['exec']})")
    )
    job_command.add_arguments(
        add("job", f"run a service's scheduled job now, on its job host ({PLAYBOOKS['job']})")
    )
    logs_command.add_parser(sub, common, HELP)

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
    promotion.add_parsers(release_sub, common, HELP)
    return parser


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """Every option of the parser and of its subcommands' parsers."""
    for action in parser._actions:  # argparse has no public list of its actions
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)


def _wants_json(tokens: Sequence[str]) -> bool:
    """--json among the arguments (argparse also takes an unambiguous prefix such as --js), before any `--` (after
    it, `slipway exec`'s command has its own)."""
    options = tokens[: list(tokens).index("--")] if "--" in tokens else tokens
    return any(len(arg) > 3 and "--json".startswith(arg) for arg in options)


def _report_usage_error(exc: UsageError, tokens: Sequence[str], out: TextIO, err: TextIO) -> NoReturn:
    """argparse's own lines on stderr (usage, `slipway ...: error: ...`), and with --json the JSON error object
    on stdout (docs/cli-json.md); exit 2 either way."""
    exc.parser.print_usage(err)
    err.write(f"{exc.parser.prog}: error: {exc.message}\n")
    err.flush()
    if _wants_json(tokens):
        commands = [word for word in tokens if word in PLAYBOOKS or word in ("release", "logs")]
        out.write(json.dumps(usage_error(exc.message, commands[0] if commands else None), indent=2) + "\n")
        out.flush()
    raise SystemExit(2)


def parse_args(
    argv: Sequence[str] | None, out: TextIO | None = None, err: TextIO | None = None
) -> argparse.Namespace:
    """argparse's parse, except that `--option=--` gives the option the value "--" (Python 3.11's argparse drops a
    `--` it takes for the end of the options and stores [], which no check expects), so the usual checks refuse
    it as any other bad value. argparse's own errors exit 2 (and --help 0) here, as before; with --json an error
    also prints a JSON error object on `out` (stdout by default)."""
    parser = build_parser()
    tokens = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(tokens)
    except UsageError as exc:
        _report_usage_error(exc, tokens, out or sys.stdout, err or sys.stderr)
    for action in _actions(parser):
        if action.option_strings and action.nargs is None and getattr(args, action.dest, None) == []:
            setattr(args, action.dest, action.type("--") if callable(action.type) else "--")
    return args
