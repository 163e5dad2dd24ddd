"""The host program's two commands, one artifact (a zipapp built from this package, installed by the roles):

  slipway-release   the rollout on an app host: begin, run, rollback, finish, record-rollout (a cluster rollout's one
                    history record), unlock, status, history; for
                    operators: exec (a one-off container of the live release), logs (its docker logs); for
                    scheduled jobs: job run (their timers' units, slipway job run), jobs sync (their units);
                    targets (Prometheus' file_sd files on the monitoring host, after a cluster rollout);
                    batch (several of these in one call: the cluster rollout's settle)
                    (`--audit JSON`: who asks and from where, kept in the lock and every history line)
  slipway-proxy     the edge proxy: switch, prepare, status, live, wait-drained, check, reload (proxy_cli.py)

Which one runs is the name it was started as (both are links to the same file), or the first argument
(`slipway-host.pyz proxy status`). Each command is one entry of a dispatch table. slipway-release answers one JSON
object on stdout in the contract's result schema; exit 0 go on / done, 1 the rollout failed and the previous
release serves (for unlock: a lock was left because a command of its run still runs), 2 bad usage, 3 the host needs
a person, 4 this program is another build than the controller's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable, Sequence

from slipway_core import contract
from slipway_core.host import (
    addresses,
    batch,  # batch: several commands in one call
    container_logs,
    jobs,
    one_off,
    queries,
    recovery,
    rollback_to,
    rollout_record,
)
from slipway_core.host import job_units as job_sync  # jobs sync: the scheduled jobs' units
from slipway_core.host import scrape_files as file_sd  # targets: the monitoring host's files after a cluster rollout
from slipway_core.host.docker import Docker, DockerError
from slipway_core.host.health import http_get
from slipway_core.host.lock import LockRefused, NotHolder
from slipway_core.host.proxy import SETTINGS_PATH, Proxy, ProxyError, load_settings
from slipway_core.host.proxy_cli import proxy_main  # slipway-proxy's commands
from slipway_core.host.release import Host, check_spec
from slipway_core.host.run import Failed, Run
from slipway_core.host.steps import Rollout
from slipway_core.host.store import Store, services
from slipway_core.host.system import Clock

try:
    from slipway_core._build import BUILD_ID  # type: ignore[import-not-found] # written into the zipapp by build.py
except ImportError:  # running from the source tree
    BUILD_ID = "source"


def emit(obj: Any) -> None:
    print(json.dumps(obj, sort_keys=True))


def read_audit(text: str) -> dict[str, str]:
    """`--audit JSON`: who asked for the run, from where (contract.AUDIT_KEYS)."""
    try:
        return contract.audit(json.loads(text or "{}"))
    except ValueError as err:
        if isinstance(err, contract.InputRefused):
            raise
        raise contract.InputRefused(f"--audit is not JSON: {err}") from err


def make_host(args: argparse.Namespace) -> Host:
    audit = read_audit(getattr(args, "audit", "{}"))
    docker, clock = Docker(), Clock()
    proxy = None
    if os.path.exists(args.proxy_settings):
        proxy = Proxy(load_settings(args.proxy_settings), docker, clock, http_get)
    holder = audit.get("actor") or str(getattr(args, "holder", "unknown"))
    slots = addresses.Slots(args.addresses)
    return Host(docker=docker, clock=clock, http=http_get, proxy=proxy, holder=holder, audit=audit, slots=slots)


def read_spec() -> dict[str, Any]:
    try:
        return check_spec(json.loads(sys.stdin.read() or "null"))
    except ValueError as err:
        raise Failed("preflight", f"the release on stdin is not JSON: {err}", contract.EXIT_USAGE) from err


# ---------------------------------------------------------------------------------------------- slipway-release
def cmd_begin(host: Host, store: Store, run: Run, args: argparse.Namespace) -> dict[str, Any]:
    rollout = Rollout(host, store, run, read_spec())
    if args.plan:
        return rollout.plan()
    if getattr(args, "cluster", False):
        run.data["cluster"] = True  # one history record per rollout (rollout_record.py)
    return rollout.begin(args.stale_after, args.force, args.start_when_ready,
                         getattr(args, "gate_when_ready", False))


def cmd_run(host: Host, store: Store, run: Run, args: argparse.Namespace) -> dict[str, Any]:
    steps, problem = contract.split_steps(args.steps)
    if problem:
        raise Failed("preflight", problem, contract.EXIT_USAGE)
    spec = read_spec()
    if run.data.get("action") == "rollback":  # begun by `rollback --begin`: the release it chose, the secrets given
        spec = {**spec, **recovery.recorded_release(run.data)}
    return Rollout(host, store, run, spec).advance(steps)


def cmd_rollback(host: Host, store: Store, run: Run, args: argparse.Namespace) -> dict[str, Any]:
    spec = json.loads(sys.stdin.read() or "{}")
    if args.begin:
        run.data["cluster"] = True  # only the cluster rollback begins apart
    if args.to:
        return rollback_to.rollback_to(host, store, run, spec, args.stale_after,
                                       version=contract.check_version(args.to), begin_only=args.begin)
    return recovery.rollback(host, store, run, spec, args.stale_after, begin_only=args.begin)


def cmd_finish(host: Host, store: Store, run: Run, args: argparse.Namespace) -> dict[str, Any]:
    return recovery.finish(host, store, run, args.failed_phase, args.message)


def cmd_record_rollout(host: Host, store: Store, run: Run, args: argparse.Namespace) -> dict[str, Any]:
    try:  # a bad input changes nothing, not even the run's record
        given = json.loads(sys.stdin.read() or "{}")
        given = given if isinstance(given, dict) else {}
        return rollout_record.record(host, store, run, given.get("hosts"), given.get("again", False))
    except ValueError as err:  # not JSON, or InputRefused
        raise Failed("record", f"record-rollout: {err}", contract.EXIT_USAGE) from err


RUN_COMMANDS: dict[str, Callable[[Host, Store, Run, argparse.Namespace], dict[str, Any]]] = {
    "begin": cmd_begin,
    "run": cmd_run,
    "rollback": cmd_rollback,
    "finish": cmd_finish,
    "record-rollout": cmd_record_rollout,
}


def stores(host: Host, args: argparse.Namespace) -> list[Store]:
    names = args.services or services(args.root)
    return [Store(args.root, contract.check_service_name(name), host.clock) for name in names]


def cmd_status(host: Host, args: argparse.Namespace) -> dict[str, Any]:
    return {"status": [queries.status(host, store) for store in stores(host, args)]}


def cmd_history(host: Host, args: argparse.Namespace) -> dict[str, Any]:
    return {"history": queries.history(stores(host, args), args.limit)}


def cmd_unlock(host: Host, args: argparse.Namespace) -> dict[str, Any]:
    if args.force and len(args.services) != 1:
        raise contract.InputRefused("unlock --force needs exactly one SERVICE")
    if not args.force and not args.run_id:
        raise contract.InputRefused("unlock needs --run-id RUN or --force SERVICE")
    if args.force and args.reason is None:
        raise contract.InputRefused("unlock --force needs --reason TEXT (recorded in the history)")
    reason = contract.check_reason(args.reason or f"the locks of run {args.run_id}, released by its controller")
    return recovery.unlock(host, stores(host, args), args.run_id, args.force, reason, args.wait)


QUERY_COMMANDS: dict[str, Callable[[Host, argparse.Namespace], dict[str, Any]]] = {
    "status": cmd_status,
    "history": cmd_history,
    "unlock": cmd_unlock,
}


OPERATOR_COMMANDS: dict[str, Callable[[Docker, str, argparse.Namespace, Clock], int]] = {
    "exec": one_off.main,
    "logs": container_logs.main,
    "job": jobs.main,
    "jobs": job_sync.main,
    "targets": file_sd.main,
}


def release_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slipway-release", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", default=contract.STATE_ROOT, help="the state directory")
    parser.add_argument("--proxy-settings", default=SETTINGS_PATH, help="the edge proxy's settings (when it runs here)")
    parser.add_argument("--addresses", default=contract.ADDRESSES_FILE, help="the services' address slots")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in RUN_COMMANDS:
        p = sub.add_parser(name)
        p.add_argument("service")
        p.add_argument("--run-id", required=True)
        p.add_argument("--holder", default=os.environ.get("SLIPWAY_HOLDER", "unknown"))
        p.add_argument("--audit", default="{}", help=f"JSON: who asks, from where ({', '.join(contract.AUDIT_KEYS)})")
        p.add_argument("--stale-after", type=float, default=120.0, help="a lock idle this long is reported stale")
        if name == "begin":
            p.add_argument("--force", action="store_true", help="deploy even when the release is unchanged")
            p.add_argument("--plan", action="store_true", help="only say whether a deploy would change anything")
            p.add_argument(
                "--start-when-ready",
                action="store_true",
                help="also start the idle colour when nothing has to come first",
            )
            p.add_argument("--gate-when-ready", action="store_true", help="also start the idle colour and pass its "
                           "health gate when nothing has to come first and its colour is settled (the cluster rollout)")
            p.add_argument("--cluster", action="store_true",
                           help="a run of the cluster rollout: its history line waits for record-rollout")
        if name == "rollback":
            p.add_argument("--to", default="", metavar="VERSION",
                           help="a release kept on this host other than the kept one (its image, no migration)")
            p.add_argument("--begin", action="store_true",
                           help="only lock, check and answer the steps left (the cluster rollback asks for them "
                                "with `run`, on every app host)")
        if name == "run":
            p.add_argument("--steps", required=True, help=f"comma-separated, in order: {', '.join(contract.STEPS)}")
        if name == "finish":
            p.add_argument("--failed-phase", default="", help="the phase the controller was in when it failed")
            p.add_argument("--message", default="", help="what failed on the controller")
    for name in QUERY_COMMANDS:
        p = sub.add_parser(name)
        p.add_argument("services", nargs="*")
        p.add_argument("--limit", type=int, default=20)
        p.add_argument("--run-id")
        p.add_argument("--force", action="store_true")
        if name == "unlock":
            p.add_argument("--reason", help="why (recorded in the history); required with --force")
            p.add_argument("--wait", type=float, default=0.0, help="seconds a running command of the run may take")
            p.add_argument("--audit", default="{}", help="JSON: who asks, as for the run commands")
    one_off.add_parser(sub)  # operators' commands: exec (slipway exec), logs (slipway logs)
    container_logs.add_parser(sub)
    jobs.add_parser(sub)  # job run (a scheduled job's timer, slipway job run)
    job_sync.add_parser(sub)  # jobs sync (the role, after a rollout: the jobs' units follow the release)
    file_sd.add_parser(sub)  # targets (the cluster rollout's settle, on the monitoring host)
    sub.add_parser("batch", help="several of these commands in one call: {\"calls\": [{\"argv\", \"stdin\"}]} on "
                   "stdin (the cluster rollout's settle)")
    return parser


def release_main(argv: Sequence[str]) -> int:
    args = release_parser().parse_args(argv)
    if args.command == "batch":
        return batch.main(release_main)
    if args.command in OPERATOR_COMMANDS:
        clock = Clock()
        return OPERATOR_COMMANDS[args.command](Docker(), args.root, args, clock)
    try:
        host = make_host(args)
        if args.command in QUERY_COMMANDS:
            answer = QUERY_COMMANDS[args.command](host, args)
            emit(answer)
            for item in answer.get("refused", []):  # the controller's task shows stderr as its message
                print(f"slipway-release: unlock: {item['service']} NOT released: {item['reason']}", file=sys.stderr)
            return contract.EXIT_FAILED if answer.get("refused") else contract.EXIT_OK
        store = Store(args.root, contract.check_service_name(args.service), host.clock)
        run = Run(store, args.run_id)
    except (contract.InputRefused, ProxyError) as err:
        print(f"slipway-release: {err}", file=sys.stderr)
        emit(contract.result(getattr(args, "service", "") or "", "failed", message=str(err)))
        return contract.EXIT_USAGE
    return run_command(host, store, run, args)


def run_command(host: Host, store: Store, run: Run, args: argparse.Namespace) -> int:
    """A run's command; a failure is cleaned up (recovery.finish: the new colour removed, or rolled forward when the
    proxy already routes it), recorded and answered."""
    try:
        answer = RUN_COMMANDS[args.command](host, store, run, args)
    except LockRefused as err:  # someone else's lock: report, change nothing (not even their run's files)
        print(f"slipway-release: lock: {err}", file=sys.stderr)
        emit(contract.result(store.service, "failed", failed_phase="lock", message=str(err), run_id=run.run_id))
        return contract.EXIT_FAILED
    except (Failed, NotHolder, DockerError, ProxyError) as err:
        phase = err.phase if isinstance(err, Failed) else str(run.data.get("phase") or "preflight")
        code = err.code if isinstance(err, Failed) else contract.EXIT_NEEDS_PERSON
        print(f"slipway-release: {phase}: {err}", file=sys.stderr)
        if isinstance(err, NotHolder) or code == contract.EXIT_USAGE:
            emit(
                contract.result(
                    store.service,
                    "failed" if code == contract.EXIT_USAGE else "unknown",
                    failed_phase=phase,
                    message=str(err),
                    run_id=run.run_id,
                )
            )
            return code
        answer = recovery.finish(host, store, run, phase, str(err))
        if answer["result"] == "deployed":
            emit(answer)
            return contract.EXIT_OK
        if code == contract.EXIT_NEEDS_PERSON:
            answer["result"] = "unknown"
        emit(answer)
        return code
    emit(answer)
    return contract.EXIT_OK


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Dispatch on the program's name (or a first argument `proxy`/`release`). Before the command, either takes
    `--expect-build ID` (exit 4 unless this is that build) and `build` prints this build's id."""
    args = list(sys.argv[1:] if argv is None else argv)
    name = os.path.basename(prog if prog is not None else sys.argv[0])
    if args and args[0] in ("proxy", "release"):
        name, args = f"slipway-{args[0]}", args[1:]
    if len(args) >= 2 and args[0] == "--expect-build":
        if args[1] != BUILD_ID:
            print(f"{name}: this build ({BUILD_ID[:12]}) is not the controller's ({args[1][:12]})", file=sys.stderr)
            return contract.EXIT_OUTDATED
        args = args[2:]
    if args == ["build"]:
        print(BUILD_ID)
        return contract.EXIT_OK
    return proxy_main(args) if name.startswith("slipway-proxy") else release_main(args)
