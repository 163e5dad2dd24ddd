"""`slipway-release exec SERVICE --run-id R [--timeout S] -- CMD...`: one command in a one-off container of the
service's LIVE release on this host (`slipway exec`, docs/runbook.md "Operators: exec and logs").

- The image is the live release's, from this host's state (state.json: its image id, so a tag moved since cannot
  change what runs), never the version the inventory names; no live release here: refused (exit 1).
- The environment is the release the controller sends on stdin (as for a rollout: env, then secret_env), which is
  also how its secrets travel: stdin, then the docker CLI's environment (`-e NAME`, never a value on a command
  line: ContainerSpec). When its configuration hash differs from the live release's (a deploy is pending), the
  answer says so (`config_differs`).
- Hardening and limits are a colour's (prepare.container_spec: every capability dropped, no-new-privileges,
  read-only root, pids, cpus, memory), on the release's network with the colour's pinned /etc/hosts entries
  (postgres, redis at their fixed addresses) but an address of Docker's choice (the fixed ones are the colours');
  `docker run --rm`, no TTY, no stdin.
- The command runs at most `--timeout` seconds; then its container is removed and the answer says `timed_out`
  with exit status 124 (timeout(1)'s).

Answer (one JSON object on stdout): {"exec": {service, host_result: ran|refused|failed, colour, version, image,
command, exit_code, timed_out, stdout, stderr, truncated, config_differs, message}}; exit 0 when the command ran
(whatever its own status, which is `exit_code`), 1 refused (no live release, its image gone), 2 bad usage, 3 docker
could not start the container.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Callable

from slipway_core import contract, operator_commands
from slipway_core.host import addresses, prepare
from slipway_core.host.docker import ContainerSpec, Docker, DockerError
from slipway_core.host.release import config_hash
from slipway_core.host.store import Store
from slipway_core.host.system import Clock

OUTPUT_LIMIT = 1 << 20  # bytes kept of each stream: its last MiB
DOCKER_FAILED = 125  # `docker run`'s status when docker itself failed (the command never started)


@dataclass
class Finished:
    """How a one-off process ended: its status (None: stopped at the timeout) and its output."""

    code: int | None
    stdout: bytes
    stderr: bytes


Runner = Callable[["list[str]", "dict[str, str]", float], Finished]


def run_process(argv: list[str], env: dict[str, str], timeout: float) -> Finished:
    """Run `argv` with `env` added to this process's environment, no stdin, output captured as bytes."""
    try:
        proc = subprocess.run(  # noqa: S603 - docker with an argument list, no shell
            argv, env={**os.environ, **env}, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        return Finished(None, err.stdout or b"", err.stderr or b"")
    return Finished(proc.returncode, proc.stdout, proc.stderr)


class OneOffSpec(ContainerSpec):
    """A colour's container spec, run attached and removed when it ends (`docker run --rm`)."""

    def argv(self) -> list[str]:
        out = super().argv()
        return [out[0], "--rm", *out[1:]]


class Refused(Exception):
    """Nothing to run the command in on this host (exit 1); the message says what to do."""


def _text(data: bytes) -> tuple[str, bool]:
    cut = len(data) > OUTPUT_LIMIT
    return (data[-OUTPUT_LIMIT:] if cut else data).decode("utf-8", "replace"), cut


def one_off(  # noqa: PLR0917 - what `slipway-release exec` was given
    docker: Docker, store: Store, spec: dict[str, Any], command: list[str], run_id: str,
            timeout: float, runner: Runner = run_process, *, name: str = "", role: str = "exec") -> dict[str, Any]:
    """Run `command` in a one-off container of the live release; the answer's `exec` record (see the docstring).
    A scheduled job (host/jobs.py) names its own container and role (its label `slipway.role`)."""
    service = store.service
    live = store.live()
    if not live:
        raise Refused(f"{service} has no live release on this host (never deployed here, or its state was "
                      f"removed); deploy it first: slipway deploy --env <env> --service {service}")
    image = str(live.get("image_id") or live.get("image") or "")
    if not image or docker.image_id(image) is None:
        raise Refused(f"the live release's image ({live.get('image')}, {image or 'no id recorded'}) is not on this "
                      f"host any more; deploy {service} again to bring it back")
    name = name or operator_commands.exec_container_name(service, run_id)
    release = {**spec, "image_ref": image, "network": live.get("network") or spec["network"]}
    env = {**spec["env"], **(spec.get("secret_env") or {})}
    base = prepare.container_spec(release, name, env, False, command)
    box = OneOffSpec(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)})
    box.hosts = addresses.pinned_hosts(docker, box.network, list(spec.get("pin_hosts") or []))  # as a colour's
    box.labels = {"slipway.service": service, "slipway.role": role, "slipway.version": str(live.get("version")),
                  "slipway.run-id": run_id}
    try:
        done = runner([docker.cli, *box.argv()], box.env, timeout)
    finally:
        docker.remove(name)  # gone already (--rm), unless it outlived its timeout
    stderr_text = done.stderr.decode("utf-8", "replace").strip()
    if done.code == DOCKER_FAILED and stderr_text.startswith("docker: "):
        raise DockerError(f"docker could not start the one-off container of {service}: {stderr_text[-500:]}")
    stdout, cut_out = _text(done.stdout)
    stderr, cut_err = _text(done.stderr)
    differs = live.get("config_hash") != config_hash(spec)
    notes = []
    if done.code is None:
        notes.append(f"stopped after {timeout:g}s (--timeout); its container was removed")
    if differs:
        notes.append("the inventory's configuration differs from the live release's (a deploy is pending): the "
                     "command ran with the inventory's environment")
    return {
        "service": service, "host_result": "ran", "colour": live.get("colour", ""),
        "version": live.get("version", ""), "image": live.get("image", ""), "command": command,
        "exit_code": operator_commands.EXEC_TIMED_OUT if done.code is None else done.code,
        "timed_out": done.code is None,
        "stdout": stdout, "stderr": stderr, "truncated": cut_out or cut_err, "config_differs": differs,
        "message": "; ".join(notes),
    }


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `exec` command of slipway-release."""
    p = sub.add_parser(
        "exec", help="run a command in a one-off container of the live release (release on stdin); options first: "
        "exec --run-id R [--timeout S] SERVICE -- CMD..."
    )
    p.add_argument("service")
    p.add_argument("--run-id", required=True)
    p.add_argument("--timeout", default=str(operator_commands.EXEC_TIMEOUT), help="seconds (default 600)")
    p.add_argument("argv", nargs=argparse.REMAINDER, help="after --: the command and its arguments")


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps({"exec": record}, sort_keys=True))


def main(docker: Docker, root: str, args: argparse.Namespace, clock: Clock, runner: Runner = run_process) -> int:
    """`slipway-release exec`: the answer on stdout, the exit status of the docstring."""
    service = str(args.service)
    record: dict[str, Any] = {"service": service, "host_result": "failed", "message": ""}
    try:
        command = list(args.argv[1:] if args.argv[:1] == ["--"] else args.argv)
        command = operator_commands.check_exec_command(command)
        timeout = operator_commands.check_exec_timeout(args.timeout)
        store = Store(root, contract.check_service_name(service), clock)
        spec = json.loads(sys.stdin.read() or "null")
        if not isinstance(spec, dict) or not isinstance(spec.get("env"), dict) or "network" not in spec:
            raise contract.InputRefused("the release on stdin is not a JSON object with env and network")
        record = one_off(docker, store, spec, command, contract.check_run_id(args.run_id), timeout, runner)
    except (contract.InputRefused, ValueError) as err:
        record["message"] = str(err)
        code = contract.EXIT_USAGE
    except Refused as err:
        record.update({"host_result": "refused", "message": str(err)})
        code = contract.EXIT_FAILED
    except DockerError as err:
        record["message"] = str(err)
        code = contract.EXIT_NEEDS_PERSON
    else:
        _emit(record)
        return contract.EXIT_OK
    print(f"slipway-release: exec: {record['message']}", file=sys.stderr)
    _emit(record)
    return code
