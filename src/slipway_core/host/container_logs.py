"""`slipway-release logs SERVICE [--colour C] [--since T] [--tail N] [--follow] [--timestamps] [--until-eof]`:
`docker logs` of the service's live colour on this host, its web replicas and its workers (`slipway logs`,
docs/runbook.md "Operators").

The host decides which container: the live colour of state.json, or the colour asked for. The CLI reaches this
command over its own transport (ssh or docker exec, slipway.logs_transport) so that `--follow` streams; the
docker output goes straight to this process's stdout and stderr. With `--until-eof`, a follow also ends when the
caller closes this command's stdin (the CLI's Ctrl-C, a dropped ssh connection): nothing keeps running here.
Several containers (replicas, workers): one `docker logs` per container, each a child of this process, whose
output and errors this process copies to its own stdout and stderr line by line, prefixed `<container> | `. No shell
pipeline: a `sh -c 'docker logs ... | sed'` stopped by SIGTERM left its docker logs running on the host.

Exit: docker logs' own status; 1 no such colour or container here (the message says which); 2 bad usage.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from typing import IO, Callable, Sequence

from slipway_core import contract, operator_commands, release_rules, worker_rules
from slipway_core.host.docker import Docker
from slipway_core.host.store import Store
from slipway_core.host.system import Clock


class NotHere(Exception):
    """No container to read on this host; the message says why."""


def target(docker: Docker, store: Store, colour: str | None) -> tuple[list[str], str]:
    """(the containers: every replica of the live colour or `colour`, then its release's workers, a description:
    version and whether it is live)."""
    live = store.live() or {}
    state = store.state()
    chosen = colour or live.get("colour")
    if not chosen:
        raise NotHere(f"{store.service} has no live release on this host; name a colour with --colour blue|green")
    kept = state.get("kept") or {}
    release = live if chosen == live.get("colour") else kept if chosen == kept.get("colour") else {}
    # The web replicas (none for a worker-only service), then the workers.
    names = contract.colour_containers(store.service, chosen, release_rules.replicas_of(release)) + [
        name for _, _, name in worker_rules.containers(store.service, chosen, worker_rules.workers_of(release))]
    if not names or docker.inspect(names[0]) is None:
        raise NotHere(f"{names[0] if names else contract.container_name(store.service, chosen)} does not exist on "
                      "this host")
    if chosen == live.get("colour"):
        what = f"{live.get('version')}, live"
    elif chosen == kept.get("colour"):
        what = f"{kept.get('version')}, kept for a rollback"
    else:
        what = "not a recorded release"
    return [name for name in names if name == names[0] or docker.inspect(name) is not None], what


def logs_argv(  # noqa: PLR0917 - docker logs' options, in its order
    cli: str, container: str, since: str, tail: str, follow: bool, timestamps: bool) -> list[str]:
    """The `docker logs` command line (values checked by the contract's rules first)."""
    argv = [cli, "logs"]
    if since:
        argv += ["--since", operator_commands.check_since(since)]
    if tail:
        argv += ["--tail", operator_commands.check_tail(tail)]
    if follow:
        argv.append("--follow")
    if timestamps:
        argv.append("--timestamps")
    return [*argv, container]


Popen = Callable[..., "subprocess.Popen[bytes]"]


def _copy_prefixed(pipe: IO[bytes], name: str, out: IO[bytes], lock: threading.Lock) -> None:
    """Each line of one stream of a container's docker logs to `out`, prefixed with the container."""
    prefix = f"{name} | ".encode()
    for line in iter(pipe.readline, b""):
        with lock:
            out.write(prefix + line if line.endswith(b"\n") else prefix + line + b"\n")
            out.flush()
    pipe.close()


def stream(argvs: list[list[str]], until_eof: bool, popen: Popen = subprocess.Popen,
           names: Sequence[str] = ()) -> int:
    """Run the docker logs commands together; with `until_eof`, stop them when stdin closes. One command writes to
    this process's stdout and stderr itself; with `names` (one per command), each command's output and errors are
    copied to this process's stdout and stderr, prefixed with its name. Their worst status, or 0 when the caller
    stopped them (stdin closed, Ctrl-C). Every command is a direct child: stopping it stops docker logs itself."""
    if names:
        lock = threading.Lock()
        procs = [popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for argv in argvs]
        copies = [threading.Thread(target=_copy_prefixed, args=(pipe, name, target, lock), daemon=True)
                  for proc, name in zip(procs, names)
                  for pipe, target in ((proc.stdout, sys.stdout.buffer), (proc.stderr, sys.stderr.buffer))]
    else:
        procs = [popen(argv) for argv in argvs]
        copies = []
    for copy in copies:
        copy.start()
    stopped = threading.Event()

    def stop() -> None:
        stopped.set()
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()

    if until_eof:

        def watch() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except (OSError, ValueError):
                pass
            if any(proc.poll() is None for proc in procs):
                stop()

        threading.Thread(target=watch, name="slipway-logs-eof", daemon=True).start()
    try:
        codes = [proc.wait() for proc in procs]
    except KeyboardInterrupt:
        stop()
        codes = [proc.wait() for proc in procs]
    for copy in copies:
        copy.join(timeout=5)
    return 0 if stopped.is_set() else max(codes)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("logs", help="docker logs of the live colour (or --colour)")
    p.add_argument("service")
    p.add_argument("--colour", choices=contract.COLOURS)
    p.add_argument("--since", default="")
    p.add_argument("--tail", default="")
    p.add_argument("--follow", action="store_true")
    p.add_argument("--timestamps", action="store_true")
    p.add_argument("--until-eof", action="store_true", help="with --follow: stop when stdin closes")


def main(docker: Docker, root: str, args: argparse.Namespace, clock: Clock, popen: Popen = subprocess.Popen) -> int:
    try:
        store = Store(root, contract.check_service_name(args.service), clock)
        argv = logs_argv(docker.cli, "", args.since, args.tail, args.follow, args.timestamps)[:-1]
        names, what = target(docker, store, args.colour)
    except contract.InputRefused as err:
        print(f"slipway-release: logs: {err}", file=sys.stderr)
        return contract.EXIT_USAGE
    except NotHere as err:
        print(f"slipway-release: logs: {err}", file=sys.stderr)
        return contract.EXIT_FAILED
    print(f"slipway-release: logs of {', '.join(names)} ({what})", file=sys.stderr, flush=True)
    argvs = [[*argv, name] for name in names]
    return stream(argvs, args.until_eof and args.follow, popen, names if len(names) > 1 else ())
