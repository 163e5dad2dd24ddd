"""Fixtures of the host program's tests: a fake host (engine, clock, apps, HAProxy socket) in tmp_path."""

from __future__ import annotations

import gc
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_edge import FakeHAProxy, FakeHttp
from fakes import FakeClock, FakeDocker
from world import World, proxy_settings

from slipway_core.host import main
from slipway_core.host.addresses import Slots
from slipway_core.host.proxy import Proxy
from slipway_core.host.release import Host

BACKUP_SCRIPT = """#!/bin/sh
if [ -n "$SLIPWAY_FAKE_BACKUP_FAIL" ]; then echo "pg_dump: connection refused" >&2; exit 2; fi
echo "dumping $1"
echo "/var/backups/postgresql/$1-20260101T000000Z.dump"
"""


@pytest.fixture
def release(world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """`slipway-release ARGS` on the fake host, with `stdin`: (exit code, the JSON answer)."""
    monkeypatch.setattr(main, "make_host", lambda args: world.host)

    def call(*argv: str, stdin: Any = None) -> tuple[int, Any]:
        capsys.readouterr()
        text = stdin if isinstance(stdin, str) else json.dumps(stdin) if stdin is not None else ""
        monkeypatch.setattr("sys.stdin", io.StringIO(text))
        code = main.main(["--root", world.root, *argv], prog="/usr/local/sbin/slipway-release")
        out = capsys.readouterr().out
        return code, json.loads(out) if out.strip() else None

    return call


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A host with the edge proxy: nothing deployed yet; images are added by each test."""
    yield from make_world(tmp_path, 1)


@pytest.fixture
def world3(tmp_path: Path) -> Iterator[World]:
    """As `world`, with an edge provisioned for 3 replicas per colour."""
    yield from make_world(tmp_path, 3)


def make_world(tmp_path: Path, replicas: int) -> Iterator[World]:
    # Unix socket paths are short (108 bytes): not under tmp_path, whose name grows with the test's.
    with tempfile.TemporaryDirectory(prefix="slw-") as sock_dir:
        live_dir = tmp_path / "live"
        for sub in ("live", "targets", "bin"):
            (tmp_path / sub).mkdir()
        backup = tmp_path / "bin" / "slipway-pg-backup"
        backup.write_text(BACKUP_SCRIPT)
        backup.chmod(0o755)
        settings = proxy_settings(sock_dir, str(live_dir), replicas)
        clock = FakeClock()
        docker = FakeDocker(clock)
        haproxy = FakeHAProxy(settings, docker, clock).serve()
        docker.kill_hooks.append(haproxy.reloaded)
        http = FakeHttp(docker, haproxy)
        proxy = Proxy(settings, docker, clock, http)
        slots = Slots(str(tmp_path / "addresses.json"))
        host = Host(docker=docker, clock=clock, http=http, proxy=proxy, holder="alice@laptop", slots=slots)
        try:
            yield World(tmp_path, clock, docker, haproxy, http, proxy, host)
        finally:
            haproxy.close()
            gc.collect()  # close the .active files of Lock objects still referenced from a traceback


@pytest.fixture
def two_live(world: World) -> World:
    """v1 kept stopped on blue, v2 live on green."""
    world.image("v1.0.0")
    world.image("v2.0.0")
    world.deploy("v1.0.0", "r1")
    world.deploy("v2.0.0", "r2")
    return world
