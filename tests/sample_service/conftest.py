"""Fixtures for the notes-api tests: the real images (built by tests/harness/build_sample.sh), real
PostgreSQL and Redis servers on 127.0.0.1, and containers on the host network that talk to them.

Docker-needing tests skip, with the reason, only when no Docker engine answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
APP_DIR = REPO / "examples" / "notes-api"
BUILD_SCRIPT = REPO / "tests" / "harness" / "build_sample.sh"
IMAGE = "slipway/notes-api"
CONTAINER_PREFIX = "notes-api-test-"

sys.path.insert(0, str(HERE))
sys.path.insert(0, str(APP_DIR))  # notes_api.config is standard-library only: importable without the venv

from notes_api_backends import Postgres, Redis, free_port, missing_tools, postgres_server, redis_server  # noqa: E402


def _docker_answers() -> str | None:
    try:
        result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                                text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no Docker engine answers ({exc})"
    if result.returncode != 0:
        return f"no Docker engine answers: {result.stderr.strip()[:200]}"
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    reason = _docker_answers()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def images(docker_engine: None) -> dict[str, str]:
    """Every test version of the image, built (or found up to date) once per session."""
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=1200,
                            check=False)
    if result.returncode != 0:
        pytest.fail(f"build_sample.sh failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    tags = ["v1.0.0", "v2.0.0", "v3.0.0-badhealth", "v4.0.0-badmigration", "v2.0.0-slow"]
    return {tag: f"{IMAGE}:{tag}" for tag in tags}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Postgres]:
    missing = missing_tools()
    if missing:
        pytest.fail(f"the sample-service tests need {', '.join(missing)}")
    with postgres_server() as pg:
        yield pg


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[Redis]:
    if missing_tools():
        pytest.fail(f"the sample-service tests need {', '.join(missing_tools())}")
    with redis_server() as redis:
        yield redis


@pytest.fixture
def pg(pg_server: Postgres) -> Postgres:
    """The session's PostgreSQL with a fresh, empty notes_api database."""
    pg_server.reset_database()
    return pg_server


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


# How Slipway runs the service: read-only root, tmpfs /tmp, no capabilities, no privilege escalation.
HARDENING = [
    "--read-only", "--tmpfs", "/tmp",  # noqa: S108 - the container's own private tmpfs
    "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
]


def service_env(pg: Postgres, redis: Redis, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": pg.user_url, "MIGRATION_DATABASE_URL": pg.owner_url, "REDIS_URL": redis.app_url,
            **extra}


def env_args(env: dict[str, str]) -> list[str]:
    args: list[str] = []
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    return args


def migrate(image: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`alembic upgrade head` in a one-off container of the image, as the rollout does."""
    return docker("run", "--rm", "--network", "host", *HARDENING, *env_args(env), image,
                  "alembic", "upgrade", "head", timeout=timeout, check=False)


@dataclass
class Response:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class App:
    """One running notes-api container on the host network."""

    name: str
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, path: str, data: Any = None, timeout: float = 10) -> Response:
        body = json.dumps(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body,  # noqa: S310 - loopback test URL
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                return Response(resp.status, resp.read().decode(), dict(resp.headers))
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.read().decode(), dict(exc.headers))

    def wait_ready(self, timeout: float = 30) -> float:
        """Wait until the port answers HTTP; returns the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                self.request("/version", timeout=2)
                return time.monotonic() - start
            except OSError:
                if not self.running():
                    break
                time.sleep(0.1)
        raise AssertionError(f"{self.name} did not answer within {timeout} s:\n{self.logs()}")

    def running(self) -> bool:
        return self.inspect("{{.State.Running}}") == "true"

    def inspect(self, fmt: str) -> str:
        return docker("inspect", "--format", fmt, self.name, check=False).stdout.strip()

    def logs(self) -> str:
        result = docker("logs", "--tail", "60", self.name, check=False)
        return result.stdout + result.stderr

    def wait_health(self, want: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            status = self.inspect("{{.State.Health.Status}}")
            if status == want:
                return status
            time.sleep(0.25)
        return status


@pytest.fixture
def start_app() -> Iterator[Callable[..., App]]:
    """Factory: start a container of an image with the given environment; removed at teardown."""
    started: list[str] = []

    def start(image: str, env: dict[str, str], *extra: str, wait: bool = True) -> App:
        port = free_port()
        name = f"{CONTAINER_PREFIX}{uuid.uuid4().hex[:8]}"
        started.append(name)
        docker("run", "-d", "--name", name, "--network", "host", *HARDENING, "--stop-timeout", "30",
               *env_args({**env, "PORT": str(port)}), *extra, image)
        app = App(name=name, port=port)
        if wait:
            app.wait_ready()
        return app

    yield start
    for name in started:
        docker("rm", "-f", "-v", name, check=False)
