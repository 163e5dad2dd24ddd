"""Support for the notes-api tests: real PostgreSQL and Redis servers, on 127.0.0.1 in temporary directories.

Uses Debian's packages (postgresql, redis-server). PostgreSQL refuses to run as root, so when the tests run
as root the server runs as the `postgres` system user the package creates.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

APP = "notes-api"
DB_NAME = "notes_api"
DB_OWNER = "notes_api_owner"
DB_USER = "notes_api"
REDIS_PREFIX = "notes-api:"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.1)
    return False


def pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


def missing_tools() -> list[str]:
    missing = []
    if pg_bindir() is None or shutil.which("psql") is None:
        missing.append("postgresql (apt-get install postgresql)")
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        missing.append("redis-server (apt-get install redis-server)")
    return missing


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class Postgres:
    port: int
    superuser: str
    owner_password: str = "owner-secret"
    user_password: str = "user-secret"

    def url(self, user: str, password: str, db: str = DB_NAME) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{db}"

    @property
    def owner_url(self) -> str:
        return self.url(DB_OWNER, self.owner_password)

    @property
    def user_url(self) -> str:
        return self.url(DB_USER, self.user_password)

    def psql(self, sql: str, db: str = DB_NAME, check: bool = True) -> str:
        """Run SQL as the cluster superuser; returns unaligned, tuples-only output."""
        result = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.superuser, "-d", db,
             "-v", "ON_ERROR_STOP=1", "-XAtq", "-c", sql],
            capture_output=True, text=True, timeout=30, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"psql failed: {sql}\n{result.stderr}")
        return result.stdout.strip()

    def reset_database(self) -> None:
        """A fresh database owned by the owner role, with the grants Slipway's postgresql role gives:
        the runtime user gets DML (not DDL) on everything the owner creates."""
        self.psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)", db="postgres")
        self.psql(f"CREATE DATABASE {DB_NAME} OWNER {DB_OWNER}", db="postgres")
        self.psql(f"REVOKE ALL ON DATABASE {DB_NAME} FROM PUBLIC; "
                  f"GRANT CONNECT ON DATABASE {DB_NAME} TO {DB_USER}", db="postgres")
        self.psql(
            f"GRANT USAGE ON SCHEMA public TO {DB_USER}; "
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {DB_OWNER} IN SCHEMA public "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {DB_USER}; "
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {DB_OWNER} IN SCHEMA public "
            f"GRANT USAGE, SELECT ON SEQUENCES TO {DB_USER}"
        )


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    bindir = pg_bindir()
    assert bindir is not None
    tmp = Path(tempfile.mkdtemp(prefix="notes-api-pg-"))
    data = tmp / "data"
    superuser = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", superuser, "--auth=trust", "-E", "UTF8",
                      "--no-sync"]),
        check=True, capture_output=True, timeout=120,
    )
    log = tmp / "postgres.log"
    proc = subprocess.Popen(
        _as_postgres([str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
                      "-k", str(tmp), "-c", "fsync=off", "-c", "full_page_writes=off",
                      "-c", "synchronous_commit=off", "-c", "max_connections=50"]),
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    try:
        pg = Postgres(port=port, superuser=superuser)
        deadline = time.monotonic() + 30
        while True:
            ready = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", str(port)], capture_output=True,
                                   check=False)
            if ready.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"PostgreSQL did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        pg.psql(f"CREATE ROLE {DB_OWNER} LOGIN PASSWORD '{pg.owner_password}'", db="postgres")
        pg.psql(f"CREATE ROLE {DB_USER} LOGIN PASSWORD '{pg.user_password}'", db="postgres")
        yield pg
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Redis:
    port: int
    proc: subprocess.Popen[bytes] | None
    admin_password: str = "admin-secret"
    app_password: str = "app-secret"

    @property
    def app_url(self) -> str:
        return f"redis://{APP}:{self.app_password}@127.0.0.1:{self.port}/0"

    def cli(self, *args: str, user: str = "default", password: str | None = None) -> str:
        result = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--user", user,
             "--pass", password or self.admin_password, "--no-auth-warning", *args],
            capture_output=True, text=True, timeout=10, check=False,
        )
        return (result.stdout + result.stderr).strip()


@contextlib.contextmanager
def redis_server() -> Iterator[Redis]:
    tmp = Path(tempfile.mkdtemp(prefix="notes-api-redis-"))
    port = free_port()
    redis = Redis(port=port, proc=None)
    conf = tmp / "redis.conf"
    # The service's ACL user may only touch keys under its prefix, like the one Slipway's redis role creates.
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp}\nsave \"\"\nappendonly no\ndaemonize no\n"
        f"user default on >{redis.admin_password} ~* &* +@all\n"
        f"user {APP} on >{redis.app_password} ~{REDIS_PREFIX}* resetchannels -@all +@read +@write "
        f"+@connection -@dangerous\n"
    )
    redis.proc = subprocess.Popen(["redis-server", str(conf)], stdout=(tmp / "redis.log").open("wb"),
                                  stderr=subprocess.STDOUT)
    try:
        if not wait_for_port(port, 15):
            raise AssertionError(f"redis-server did not start:\n{(tmp / 'redis.log').read_text()[-2000:]}")
        yield redis
    finally:
        redis.proc.terminate()
        try:
            redis.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            redis.proc.kill()
            redis.proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


# How Slipway runs the service: read-only root, tmpfs /tmp, no capabilities, no privilege escalation.
HARDENING = [
    "--read-only", "--tmpfs", "/tmp",  # noqa: S108 - the container's own private tmpfs
    "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--memory", "256m", "--pids-limit", "100",
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
