"""notes-api containers against real PostgreSQL and Redis: API, health, metrics, shutdown, test switches."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

import pytest
from notes_api_support import REDIS_PREFIX, App, Postgres, Redis, Response, docker, migrate, redis_server, service_env

from slipway_core.host import health
from slipway_core.host.docker import Docker

pytestmark = pytest.mark.integration

StartApp = Callable[..., App]


@pytest.fixture
def v2(images: dict[str, str], pg: Postgres, redis_srv: Redis, start_app: StartApp) -> App:
    """v2.0.0 running on a freshly migrated database."""
    env = service_env(pg, redis_srv)
    result = migrate(images["v2.0.0"], env)
    assert result.returncode == 0, result.stderr
    return start_app(images["v2.0.0"], env)


def test_image_contract(images: dict[str, str]) -> None:
    fmt = "{{.Config.User}}|{{json .Config.ExposedPorts}}|{{json .Config.Healthcheck.Test}}|{{json .Config.Cmd}}"
    inspected = docker("image", "inspect", "--format", fmt, images["v2.0.0"]).stdout.strip()
    user, ports, healthcheck, cmd = inspected.split("|")
    assert user not in ("", "0", "root", "0:0")
    assert "8000/tcp" in ports
    assert "notes_api.healthcheck" in healthcheck
    assert cmd.startswith("[")  # exec form: the app is PID 1 and gets SIGTERM itself
    assert docker("run", "--rm", "--entrypoint", "id", images["v2.0.0"], "-u").stdout.strip() != "0"


def test_versions_share_all_but_their_last_layer(images: dict[str, str]) -> None:
    layers = {tag: docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", ref).stdout
              for tag, ref in images.items()}
    split = {tag: value.strip("[]\n").split(",") for tag, value in layers.items()}
    reference = split["v2.0.0"]
    for tag, these in split.items():
        assert these[:-1] == reference[:-1], f"{tag} does not share the dependency layers with v2.0.0"


def test_version_and_index(v2: App) -> None:
    version = v2.request("/version").json()
    assert version == {"service": "notes-api", "version": "v2.0.0", "schema_revision": "0002"}
    index = v2.request("/").json()
    assert "tags" in index["features"]


def test_notes_round_trip_and_prefixed_counter(v2: App, redis_srv: Redis) -> None:
    created = v2.request("/notes", {"title": "deploy", "body": "blue-green", "tags": ["ops", "demo"]})
    assert created.status == 201, created.body
    note = created.json()
    assert note["tags"] == ["ops", "demo"]

    first = v2.request(f"/notes/{note['id']}").json()
    second = v2.request(f"/notes/{note['id']}").json()
    assert (first["title"], first["body"]) == ("deploy", "blue-green")
    assert second["views"] == first["views"] + 1

    listed = v2.request("/notes").json()["notes"]
    assert [n["id"] for n in listed][:1] == [note["id"]]

    key = f"{REDIS_PREFIX}note:{note['id']}:views"
    assert redis_srv.cli("GET", key) == str(second["views"])
    assert all(k.startswith(REDIS_PREFIX) for k in redis_srv.cli("--scan").split()), "a key outside the prefix"

    assert v2.request("/notes/999999").status == 404
    assert v2.request("/notes", {"body": "no title"}).status == 400


def test_v1_code_runs_on_v2_schema(images: dict[str, str], pg: Postgres, redis_srv: Redis,
                                   start_app: StartApp) -> None:
    """Expand-only migrations: the previous release keeps working after the next one migrated (rollback)."""
    env = service_env(pg, redis_srv)
    assert migrate(images["v2.0.0"], env).returncode == 0
    v1 = start_app(images["v1.0.0"], env)
    assert v1.request("/health").status == 200
    created = v1.request("/notes", {"title": "from v1", "body": "x"})
    assert created.status == 201, created.body
    assert "tags" not in created.json()
    assert v1.request("/notes", {"title": "t", "body": "x", "tags": ["a"]}).status == 400
    assert v1.request(f"/notes/{created.json()['id']}").status == 200


def test_health_follows_redis(images: dict[str, str], pg: Postgres, start_app: StartApp) -> None:
    with redis_server() as own_redis:
        env = service_env(pg, own_redis)
        assert migrate(images["v2.0.0"], env).returncode == 0
        app = start_app(images["v2.0.0"], env)
        ok = app.request("/health")
        assert ok.status == 200, ok.body
        assert ok.json()["checks"] == {"database": "ok", "redis": "ok"}
        assert app.wait_health("healthy", 30) == "healthy", app.logs()

        assert own_redis.proc is not None
        own_redis.proc.terminate()
        own_redis.proc.wait(timeout=10)
        down = app.request("/health")
        assert down.status == 503
        assert down.json()["checks"]["database"] == "ok"
        assert down.json()["checks"]["redis"].startswith("error")
        # Notes still work without the counter; the note comes back without views.
        created = app.request("/notes", {"title": "t", "body": "b"})
        assert created.status == 201
        assert "views" not in app.request(f"/notes/{created.json()['id']}").json()
        metrics = app.request("/metrics").body
        assert 'notes_api_dependency_up{dependency="redis"} 0.0' in metrics


def test_health_follows_database(v2: App, pg: Postgres) -> None:
    assert v2.request("/health").status == 200
    pg.psql("REVOKE SELECT ON notes FROM notes_api")
    down = v2.request("/health")
    assert down.status == 503
    assert "database" in down.json()["checks"]
    assert down.json()["checks"]["database"].startswith("error")


def test_the_gate_s_own_run_of_the_healthcheck_follows_the_app(v2: App, pg: Postgres) -> None:
    """health.check_now, which the gate runs while Docker still says `starting` (colours check every 10 s), runs the
    image's HEALTHCHECK through the real engine as Docker does: `docker exec` as the image's user, its verdict."""
    engine = Docker()
    info = engine.inspect(v2.name)
    assert health.healthcheck_argv(info) == (["python", "-m", "notes_api.healthcheck"], 3.0)
    assert health.check_now(engine, info) == (True, "")
    pg.psql("REVOKE SELECT ON notes FROM notes_api")
    passed, output = health.check_now(engine, info) or (True, "no HEALTHCHECK")
    assert not passed and "/health: HTTP 503" in output, output


def test_metrics_count_requests_per_route(v2: App) -> None:
    for _ in range(3):
        v2.request("/notes/424242")
    body = v2.request("/metrics").body
    match = re.search(r'http_requests_total\{method="GET",route="/notes/\{note_id:int\}",status="404"\} (\S+)', body)
    assert match, body
    assert float(match.group(1)) == 3
    assert 'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/notes/{note_id:int}"}' in body
    assert 'notes_api_build_info{schema_revision="0002",version="v2.0.0"} 1.0' in body
    assert not re.search(r"^\w+_created[{ ]", body, re.MULTILINE), "*_created series are disabled"


@pytest.mark.parametrize("init", [False, True], ids=["app-is-pid-1", "docker-init"])
def test_sigterm_finishes_in_flight_request_and_exits_0(
    init: bool, images: dict[str, str], pg: Postgres, redis_srv: Redis, start_app: StartApp
) -> None:
    """As PID 1 the kernel ignores a re-raised SIGTERM; under an init (docker run --init, tini) it would kill
    the process with status 143, so both ways are checked."""
    env = service_env(pg, redis_srv)
    assert migrate(images["v2.0.0"], env).returncode == 0
    v2 = start_app(images["v2.0.0"], env, *(["--init"] if init else []))
    results: list[Response | Exception] = []

    def slow() -> None:
        try:
            results.append(v2.request("/debug/sleep?seconds=3", timeout=20))
        except Exception as exc:
            results.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.8)  # the request is in flight
    start = time.monotonic()
    docker("kill", "--signal", "TERM", v2.name)
    time.sleep(0.5)
    # The listener closes right away: no new connections while in-flight requests finish.
    with pytest.raises(OSError, match="refused"):
        v2.request("/version", timeout=2)
    thread.join(timeout=30)
    assert len(results) == 1
    response = results[0]
    assert isinstance(response, Response), f"in-flight request failed: {response}\n{v2.logs()}"
    assert response.status == 200
    assert response.json()["slept"] == 3
    # It exits by itself (a TERM, no KILL follows): the 20 s are a generous bound, not a speed target.
    deadline = time.monotonic() + 20
    while v2.running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not v2.running(), f"still running {time.monotonic() - start:.1f} s after its TERM"
    assert v2.inspect("{{.State.ExitCode}}") == "0", v2.logs()
    assert "shut down gracefully" in v2.logs()


def test_badhealth_build_reports_unhealthy(images: dict[str, str], pg: Postgres, redis_srv: Redis,
                                           start_app: StartApp) -> None:
    env = service_env(pg, redis_srv)
    assert migrate(images["v3.0.0-badhealth"], env).returncode == 0
    bad = start_app(images["v3.0.0-badhealth"], env, "--health-start-period", "1s")
    health = bad.request("/health")
    assert health.status == 503
    assert health.json()["checks"]["database"] == "ok"
    assert "FAIL_HEALTH" in health.json()["checks"]["fail_health"]
    # The image's own HEALTHCHECK command (interval 2 s, 3 retries) turns the container unhealthy; the
    # start period (20 s in the image, where failures do not count) is shortened to keep the test quick.
    assert bad.wait_health("unhealthy", 30) == "unhealthy", bad.logs()
    # ... and the switch is a run-time override too.
    fixed = start_app(images["v3.0.0-badhealth"], {**env, "FAIL_HEALTH": "0"})
    assert fixed.request("/health").status == 200


def test_slow_build_listens_late(images: dict[str, str], pg: Postgres, redis_srv: Redis,
                                 start_app: StartApp) -> None:
    env = service_env(pg, redis_srv)
    assert migrate(images["v2.0.0-slow"], env).returncode == 0
    slow = start_app(images["v2.0.0-slow"], env, wait=False)
    took = slow.wait_ready(timeout=30)
    assert took >= 3, f"the slow build answered after {took:.1f} s, before its STARTUP_DELAY=5"
    assert slow.request("/version").json()["version"] == "v2.0.0-slow"

    # SIGTERM while it is still waiting: a clean exit 0, not a kill. A process that ignored the signal would be
    # killed at the stop's timeout and exit 137; no wall-clock bound here (one failed at load 20: 16.5 s, exit 0).
    waiting = start_app(images["v2.0.0-slow"], env, wait=False)
    deadline = time.monotonic() + 20
    while "waiting before listening" not in waiting.logs():
        assert time.monotonic() < deadline, waiting.logs()
        time.sleep(0.1)
    docker("stop", "-t", "20", waiting.name, timeout=60)
    assert waiting.inspect("{{.State.ExitCode}}") == "0", waiting.logs()
    assert "exiting without serving" in waiting.logs()


def test_bad_configuration_exits_2_with_a_message(images: dict[str, str], start_app: StartApp) -> None:
    app = start_app(images["v2.0.0"], {"DATABASE_URL": "mysql://x@127.0.0.1/x", "REDIS_URL": "redis://127.0.0.1"},
                    wait=False)
    deadline = time.monotonic() + 20
    while app.running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert app.inspect("{{.State.ExitCode}}") == "2"
    assert "DATABASE_URL" in app.logs()
