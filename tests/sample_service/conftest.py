"""Fixtures for the notes-api tests: the real images (built by tests/harness/build_sample.sh), real
PostgreSQL and Redis servers on 127.0.0.1, and containers on the host network that talk to them.

Docker-needing tests skip, with the reason, only when no Docker engine answers.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
APP_DIR = REPO / "examples" / "notes-api"
BUILD_SCRIPT = REPO / "tests" / "harness" / "build_sample.sh"
IMAGE = "slipway/notes-api"
CONTAINER_PREFIX = "notes-api-test-"

sys.path.insert(0, str(HERE))
sys.path.insert(0, str(APP_DIR))  # notes_api.config is standard-library only: importable without the venv

from notes_api_support import (  # noqa: E402
    HARDENING,
    App,
    Postgres,
    Redis,
    docker,
    env_args,
    free_port,
    missing_tools,
    postgres_server,
    redis_server,
)


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
