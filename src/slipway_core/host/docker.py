"""The Docker engine, as the rollout uses it.

Reads (inspect a container, an image's id) go to the engine's API socket: about 1 ms a call against 30-100 ms for
starting the docker CLI (measured), and the health gate asks many times. Changes (run, start, stop, rm, rename,
load, pull, exec) go through the docker CLI, whose options the role's users know. A ContainerSpec is the one place
that builds a `docker run` command line; its argv is unit-tested without an engine. Values of environment
variables never reach a command line: `-e NAME` only, the value travels in the CLI's environment.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Iterator

from slipway_core.host import registry

DOCKER_SOCKET = "/var/run/docker.sock"


class DockerError(Exception):
    """A docker command failed or timed out; the message says which and why."""


@dataclass
class ContainerSpec:
    """One container to run: a colour of a service, or its one-off migration."""

    name: str
    image: str
    network: str
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    detach: bool = True
    restart_policy: str = ""
    stop_timeout: int = 0
    health_interval: str = ""
    healthcheck: bool = True  # False: the image's HEALTHCHECK is off (a worker: the image's check is the web's)
    health_cmd: str = ""  # a shell command replacing the image's HEALTHCHECK (a worker's health_command)
    read_only: bool = True
    tmpfs_size: str = "64m"
    pids_limit: int = 0
    cpus: str = ""
    memory: str = ""
    ip: str = ""  # a fixed address on `network` (contract.colour_address), or Docker's choice
    hosts: dict[str, str] = field(default_factory=dict)  # name -> address, written to the container's /etc/hosts
    # Host directories bind-mounted read-only: (source, target), e.g. the data tier's CA for verify-full.
    mounts: list[tuple[str, str]] = field(default_factory=list)
    # `--publish address:port:container_port` (an app host's colours for an edge on another host, host/publish.py).
    publish: list[str] = field(default_factory=list)

    def argv(self) -> list[str]:
        """`docker run ...` arguments (without the leading `docker`). Always least privilege: every capability
        dropped, no-new-privileges; a read-only root with a small /tmp unless the service opts out."""
        out = [
            "run",
            *(["--detach", "--hostname", self.name] if self.detach else []),
            "--name",
            self.name,
            "--network",
            self.network,
            *(["--ip", self.ip] if self.ip else []),
        ]
        for host in sorted(self.hosts):
            out += ["--add-host", f"{host}:{self.hosts[host]}"]
        for binding in self.publish:
            out += ["--publish", binding]
        for source, target in self.mounts:
            out += ["--mount", f"type=bind,source={source},target={target},readonly"]
        if self.restart_policy:
            out += ["--restart", self.restart_policy]
        if self.stop_timeout:
            out += ["--stop-timeout", str(self.stop_timeout)]
        out += self.health_argv()
        out += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        if self.read_only:
            out += ["--read-only", "--tmpfs", f"/tmp:rw,nosuid,nodev,size={self.tmpfs_size}"]  # noqa: S108 - in the container
        if self.pids_limit:
            out += ["--pids-limit", str(self.pids_limit)]
        if self.cpus:
            out += ["--cpus", self.cpus]
        if self.memory:
            out += ["--memory", self.memory, "--memory-swap", self.memory]
        for name in sorted(self.env):
            out += ["-e", name]
        for key in sorted(self.labels):
            out += ["--label", f"{key}={self.labels[key]}"]
        return [*out, self.image, *self.command]


    def health_argv(self) -> list[str]:
        """The health check: the image's (at `health_interval`), a command of its own, or none."""
        out = ["--health-interval", self.health_interval] if self.health_interval else []
        if self.health_cmd:
            return [*out, "--health-cmd", self.health_cmd]
        return out if self.healthcheck else ["--no-healthcheck"]


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class Docker:
    """The engine of this host. `socket_path` is the API socket; `cli` the docker command."""

    def __init__(self, socket_path: str = DOCKER_SOCKET, cli: str = "docker") -> None:
        host = os.environ.get("DOCKER_HOST", "")
        # Another engine (DOCKER_HOST) is asked through the CLI only, which follows DOCKER_HOST itself.
        self.socket_path = socket_path if not host or host == f"unix://{socket_path}" else ""
        self.cli = cli

    # ------------------------------------------------------------------------------------------------ reads
    def _api_get(self, path: str) -> tuple[int, Any] | None:
        """GET on the API socket: (status, JSON body or None); None when the socket cannot be used."""
        if not self.socket_path:
            return None
        conn = _UnixHTTPConnection(self.socket_path, 10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()
        try:
            return resp.status, json.loads(body) if resp.status == 200 else None
        except ValueError:
            return None

    def _inspect(self, kind: str, name: str, api_path: str) -> dict[str, Any] | None:
        """`docker <kind> inspect name` through the API socket (the CLI when the socket cannot be used)."""
        answer = self._api_get(api_path)
        if answer is not None and answer[0] in (200, 404):
            return answer[1] if isinstance(answer[1], dict) else None
        proc = self.command(kind, "inspect", name, check=False)
        if proc.returncode != 0:
            return None
        data = json.loads(proc.stdout)
        return data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else None

    def inspect(self, name: str) -> dict[str, Any] | None:
        """A container's inspect data, or None when there is no such container."""
        return self._inspect("container", name, f"/containers/{urllib.parse.quote(name, safe='')}/json")

    def network(self, name: str) -> dict[str, Any] | None:
        """A network's inspect data, or None when there is no such network."""
        return self._inspect("network", name, f"/networks/{urllib.parse.quote(name, safe='')}")

    def image_id(self, ref: str) -> str | None:
        answer = self._api_get(f"/images/{urllib.parse.quote(ref, safe='/:@')}/json")
        if answer is not None and answer[0] in (200, 404):
            return str(answer[1]["Id"]) if isinstance(answer[1], dict) and answer[1].get("Id") else None
        proc = self.command("image", "inspect", "--format", "{{.Id}}", ref, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def root_dir(self) -> str | None:
        """The engine's data root (`docker info` DockerRootDir), or None when it does not answer."""
        answer = self._api_get("/info")
        if answer is not None and answer[0] == 200 and isinstance(answer[1], dict):
            return str(answer[1].get("DockerRootDir") or "") or None
        proc = self.command("info", "--format", "{{.DockerRootDir}}", timeout=20, check=False)
        return (proc.stdout.strip() or None) if proc.returncode == 0 else None

    # ---------------------------------------------------------------------------------------------- changes
    def command(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        stdin: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run `docker ARGS`; with check, a non-zero exit raises DockerError naming the command and its error."""
        try:
            proc = subprocess.run(  # noqa: S603 - an argument list, no shell
                [self.cli, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env={**os.environ, **env} if env is not None else None,
                input=stdin,
            )
        except subprocess.TimeoutExpired as err:
            raise DockerError(f"`docker {' '.join(args[:2])}` did not finish within {timeout:g}s") from err
        except OSError as err:
            raise DockerError(f"the docker command cannot run: {err.strerror}") from err
        if check and proc.returncode != 0:
            raise DockerError(f"`docker {' '.join(args[:3])}` failed: {(proc.stderr or proc.stdout).strip()}")
        return proc

    def run(self, spec: ContainerSpec, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """docker run: detached (returns when started), or attached (returns when the command ended; check the
        returncode). The container is left for the caller (logs, then remove)."""
        return self.command(*spec.argv(), env=spec.env, timeout=timeout, check=spec.detach)

    def start(self, name: str) -> None:
        self.command("start", name)

    def stop(self, name: str, grace: float) -> None:
        self.command("stop", "--time", str(int(grace)), name, timeout=grace + 30, check=False)

    def remove(self, name: str) -> None:
        self.command("rm", "-f", name, timeout=60, check=False)

    def rename(self, old: str, new: str) -> None:
        self.command("rename", old, new)

    def tags(self, repository: str) -> dict[str, str]:
        """The tags of `repository` on the host: reference -> image id."""
        proc = self.command("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", repository,
                            check=False)
        pairs = (line.split() for line in proc.stdout.splitlines())
        return {words[0]: words[1] for words in pairs if len(words) == 2 and not words[0].endswith(":<none>")}

    def remove_image(self, ref: str) -> bool:
        """Untag `ref` (the image goes with its last tag, unless a container uses it); True when it went."""
        return self.command("rmi", ref, timeout=60, check=False).returncode == 0

    def containers(self, service: str) -> dict[str, bool]:
        """Every container of a service (its label), running or not: name -> running."""
        proc = self.command("ps", "-a", "--filter", f"label=slipway.service={service}", "--format",
                            "{{.Names}} {{.State}}", check=False)
        pairs = (line.split() for line in proc.stdout.splitlines())
        return {words[0]: words[1] == "running" for words in pairs if len(words) == 2}

    def prune_dangling(self) -> None:
        """Remove dangling (untagged, unused) images: never one a container, stopped or not, still uses."""
        self.command("image", "prune", "--force", timeout=120, check=False)

    def logs(self, name: str, lines: int) -> str:
        proc = self.command("logs", "--tail", str(lines), name, timeout=20, check=False)
        return (proc.stdout + proc.stderr).strip()

    def exec(
        self, container: str, argv: list[str], user: str = "", timeout: float = 20, *, stderr: bool = False
    ) -> tuple[int, str]:
        """`docker exec`: its exit status and stdout (with stderr after it: Docker's health log keeps both)."""
        proc = self.command("exec", *(["-u", user] if user else []), container, *argv, timeout=timeout, check=False)
        return proc.returncode, proc.stdout + (proc.stderr if stderr else "")

    def kill(self, container: str, signal: str) -> None:
        self.command("kill", "--signal", signal, container)

    def load(self, archive: str) -> None:
        self.command("load", "--input", archive, timeout=1800)

    @contextlib.contextmanager
    def registry_login(self, ref: str, username: str = "", password: str = "") -> Iterator[dict[str, str] | None]:
        """A docker session for `ref`'s registry: with a username and password, logged in through a private,
        temporary Docker config (its environment is yielded), so the credentials serve this session's commands and
        never stay on the host (~/.docker/config.json); without them, None (the engine's own configuration)."""
        registry = registry_host(ref)
        with tempfile.TemporaryDirectory(prefix="slipway-docker-") as config:
            if not (username and password):
                yield None
                return
            env = {"DOCKER_CONFIG": config}
            login = self.command(
                "login",
                "--username",
                username,
                "--password-stdin",
                *([registry] if registry else []),
                stdin=password,
                env=env,
                timeout=60,
                check=False,
            )
            if login.returncode != 0:
                raise DockerError(
                    f"docker login to {registry or 'Docker Hub'} as {username} failed: {login.stderr.strip()}"
                )
            yield env

    def pull_size(self, ref: str, env: dict[str, str] | None) -> tuple[int, str]:
        """(the compressed bytes of `ref` for this host from its registry's manifest, "") or (0, why it is not
        known); never raises (registry.py)."""
        answer = self._api_get("/info")
        info = answer[1] if answer is not None and answer[0] == 200 and isinstance(answer[1], dict) else {}
        config = info.get("RegistryConfig") or {}
        where = registry_host(ref)
        why = registry.unreadable(where, config)
        if why:
            return 0, why
        try:
            proc = self.command(*registry.manifest_argv(ref, where, config), env=env,
                                timeout=registry.MANIFEST_TIMEOUT, check=False)
        except DockerError as err:
            return 0, str(err)
        if proc.returncode != 0:
            said = (proc.stderr or proc.stdout).strip().splitlines()
            return 0, f"docker manifest inspect failed: {said[0] if said else f'exit {proc.returncode}'}"
        try:
            size = registry.manifest_bytes(json.loads(proc.stdout), registry.host_architecture())
        except ValueError:
            return 0, "docker manifest inspect answered no JSON"
        return (size, "") if size else (0, f"the manifest lists no image for linux/{registry.host_architecture()}")

    def pull(self, ref: str, env: dict[str, str] | None = None) -> None:
        """docker pull in a session of registry_login (`env` None: not logged in)."""
        proc = self.command("pull", ref, env=env, timeout=1800, check=False)
        if proc.returncode != 0:
            hint = "" if env is not None else (
                " (no SLIPWAY_REGISTRY_USERNAME/SLIPWAY_REGISTRY_PASSWORD were given for a login)"
            )
            raise DockerError(f"docker pull {ref} failed: {proc.stderr.strip()}{hint}")


def registry_host(ref: str) -> str | None:
    """The registry host of an image reference, None for Docker Hub."""
    first = ref.split("/", 1)[0]
    if "/" in ref and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def container_ip(info: dict[str, Any], network: str) -> str | None:
    networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
    return (networks.get(network) or {}).get("IPAddress") or None


def health_status(info: dict[str, Any] | None) -> str | None:
    """Docker's health of a container (healthy, unhealthy, starting) or None without a HEALTHCHECK."""
    state = (info or {}).get("State") or {}
    status = (state.get("Health") or {}).get("Status")
    return str(status) if status else None


def running(info: dict[str, Any] | None) -> bool:
    return bool(((info or {}).get("State") or {}).get("Running"))


def labels(info: dict[str, Any] | None) -> dict[str, str]:
    return dict(((info or {}).get("Config") or {}).get("Labels") or {})
