"""The steps' edges: getting the image, the backup, the skip-check's reasons, start and the health gate."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import NETWORK, Behaviour, Box
from world import SERVICE, World

from slipway_core import contract
from slipway_core.host import health, prepare
from slipway_core.host.docker import DockerError
from slipway_core.host.release import check_spec, public
from slipway_core.host.run import Failed
from slipway_core.host.steps import STEPS


# ------------------------------------------------------------------------------------------------------ image
def test_image_from_an_archive_is_loaded_and_removed(world: World) -> None:
    world.image("v1.0.0", on_host=False)
    begun = world.begin("v1.0.0", "r1")
    archive = world.store().paths.image_archive
    assert (begun["todo"][0], begun["upload"]) == ("image", archive)
    Path(archive).write_bytes(b"docker save output")  # the controller ships it there
    world.docker.archives[archive] = world.ref("v1.0.0")

    answer = world.advance("v1.0.0", "r1", begun["todo"])

    assert answer["result"] == "deployed"
    assert ("load", archive) in world.docker.calls
    assert not any(call[0] == "pull" for call in world.docker.calls)
    assert not os.path.exists(archive)


def test_image_from_a_private_registry_uses_the_release_credentials(world: World) -> None:
    world.image("v1.0.0", on_host=False)
    world.docker.private[world.ref("v1.0.0")] = ("deploy", "hunter2")

    with pytest.raises(Failed, match="pull access denied"):
        world.deploy("v1.0.0", "r1")
    assert world.finish("r1", "image", "")["failed_phase"] == "image"

    answer = world.deploy("v1.0.0", "r2", registry_username="deploy",
                          registry_password="hunter2")  # noqa: S106  # pragma: allowlist secret
    assert answer["result"] == "deployed"
    assert "hunter2" not in Path(world.store().paths.run("r2")).read_text()  # the record keeps no secret
    assert ("pull", world.ref("v1.0.0"), "deploy") in world.docker.calls


def test_image_still_missing_after_a_load(world: World) -> None:
    world.image("v1.0.0", on_host=False)
    archive = world.store().paths.image_archive
    Path(archive).write_bytes(b"x")
    world.docker.archives[archive] = "registry.example.test/other:v1"
    world.docker.registry["registry.example.test/other:v1"] = "sha256:other"

    with pytest.raises(Failed, match=r"notes-api:v1.0.0 is not on the host after the load of .*image.tar"):
        world.deploy("v1.0.0", "r1")


def test_an_unreadable_archive_fails_the_image_step(world: World) -> None:
    world.image("v1.0.0", on_host=False)
    Path(world.store().paths.image_archive).write_bytes(b"not an image")

    with pytest.raises(Failed, match="is not an image archive") as failed:
        world.deploy("v1.0.0", "r1")

    assert failed.value.phase == "image"
    assert world.docker.runs == []


# ----------------------------------------------------------------------------------------------------- backup
def test_a_failed_backup_stops_the_rollout(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.image("v1.0.0")
    monkeypatch.setenv("SLIPWAY_FAKE_BACKUP_FAIL", "1")

    with pytest.raises(Failed) as failed:
        world.deploy("v1.0.0", "r1", migrate_command=["alembic", "upgrade", "head"], backup_db="notes_api")

    assert failed.value.phase == "backup"
    assert "the backup of notes_api failed (exit 2): pg_dump: connection refused" in str(failed.value)
    assert world.docker.runs == []


def test_a_backup_command_that_cannot_run(world: World) -> None:
    world.image("v1.0.0")

    with pytest.raises(Failed, match="could not run"):
        world.deploy("v1.0.0", "r1", migrate_command=["migrate"], backup_db="notes_api",
                     backup_command=str(world.tmp / "missing"))


def test_a_migration_that_docker_cannot_run(world: World) -> None:
    world.image("v1.0.0")
    world.docker.images.clear()
    world.docker.images[world.ref("v1.0.0")] = world.docker.registry[world.ref("v1.0.0")]

    def refuse(call: str, args: tuple[str, ...]) -> None:
        if call == "run":
            raise DockerError("`docker run` did not finish within 600s")

    world.docker.before = refuse

    with pytest.raises(Failed, match=r"failed \(exit -1\)") as failed:
        world.deploy("v1.0.0", "r1", migrate_command=["migrate"])
    assert "`docker run` did not finish within 600s" in str(failed.value)


# ------------------------------------------------------------------------------------------------ skip-check
@pytest.fixture
def blue_live(world: World) -> World:
    world.image("v1.0.0")
    world.deploy("v1.0.0", "r1")
    return world


@pytest.mark.parametrize(
    ("breakage", "why"),
    [
        ("stop", "notes-api-blue is not running"),
        ("unhealthy", "notes-api-blue is unhealthy"),
        ("image", "notes-api-blue runs another image than recorded"),
        ("proxy", "the proxy does not route notes-api to blue"),
    ],
)
def test_a_live_release_that_is_not_serving_is_redeployed(blue_live: World, breakage: str, why: str) -> None:
    world = blue_live
    box = world.docker.boxes[f"{SERVICE}-blue"]
    if breakage == "stop":
        box.running = False
    elif breakage == "unhealthy":
        box.behaviour.unhealthy = True
    elif breakage == "image":
        box.image_id = "sha256:0ther"
    else:
        world.proxy.persist(SERVICE, "green")

    plan = world.rollout("p1", world.spec("v1.0.0")).plan()

    assert plan["result"] == "planned"
    assert plan["message"] == f"would deploy v1.0.0 ({why})"


# ------------------------------------------------------------------------------------------------------ start
def test_start_refuses_the_live_colour(blue_live: World) -> None:
    rollout = blue_live.rollout("r2", blue_live.spec("v1.0.0"))
    rollout.run.data.update({"colour": "blue", "config_hash": "x"})

    with pytest.raises(Failed) as failed:
        rollout.start()

    assert failed.value.code == contract.EXIT_NEEDS_PERSON
    assert blue_live.routed() == [f"{SERVICE}-blue"]


def test_a_failed_docker_run_puts_the_kept_container_back(world: World) -> None:
    for version in ("v1.0.0", "v2.0.0"):
        world.image(version)
        world.deploy(version, f"r-{version}")
    world.image("v3.0.0")

    def refuse(call: str, args: tuple[str, ...]) -> None:
        if call == "run":
            raise DockerError("`docker run` failed: port is already allocated")

    world.docker.before = refuse

    with pytest.raises(Failed, match="docker run of notes-api-blue failed: `docker run` failed: port is already"):
        world.deploy("v3.0.0", "r3")

    blue = world.docker.boxes[f"{SERVICE}-blue"]
    assert blue.labels["slipway.version"] == "v1.0.0"
    assert f"{SERVICE}-blue-kept" not in world.docker.boxes
    world.docker.before = None
    world.finish("r3", "start", "")
    world.assert_settled("r3")


def test_a_leftover_container_of_the_idle_colour_is_replaced(blue_live: World) -> None:
    world = blue_live
    world.image("v2.0.0")
    stray = Box(f"{SERVICE}-green", world.ref("v1.0.0"), "sha256:old", Behaviour(), {"slipway.run-id": "old"}, {},
                "172.18.0.99")
    world.docker.boxes[stray.name] = stray  # not the kept release (there is none): it goes

    world.begin("v2.0.0", "r2")

    assert ("remove", f"{SERVICE}-green") in world.docker.calls
    assert world.docker.boxes[f"{SERVICE}-green"].labels["slipway.run-id"] == "r2"


def test_start_without_a_reachable_proxy_is_unprepared(world: World) -> None:
    world.image("v1.0.0")
    world.proxy.settings["admin_socket"] += ".down"

    world.begin("v1.0.0", "r1")

    assert world.store().run("r1")["proxy_prepared"] is False


# -------------------------------------------------------------------------------------------- the health gate
def target(name: str, network: str = NETWORK) -> health.Target:
    return health.Target(name, network, 8000, "/healthz", "notes.example.test")


def test_gate_reasons(world: World) -> None:
    world.image("v1.0.0", Behaviour(healthcheck=False))
    world.begin("v1.0.0", "r1")
    gate = health.gate

    assert gate(world.docker, world.clock, world.http, target("ghost"), 1).problem == "ghost disappeared"
    verdict = gate(world.docker, world.clock, world.http, target(f"{SERVICE}-blue", "other-net"), 0.2)
    assert verdict.problem.endswith(f"{SERVICE}-blue has no address on other-net")
    verdict = gate(world.docker, world.clock, world.http, target(f"{SERVICE}-blue"), 1)
    assert verdict.healthy  # no HEALTHCHECK: the 200 decides
    assert verdict.address == world.docker.boxes[f"{SERVICE}-blue"].ip


def test_docker_time_and_start_to_healthy() -> None:
    assert health.docker_time("2026-01-01T00:00:01.5Z") == pytest.approx(1_767_225_601.5)
    assert health.docker_time("2026-01-01T01:00:00+01:00") == pytest.approx(1_767_225_600)
    assert health.docker_time("yesterday") is None
    info = {"State": {"Health": {"Status": "healthy", "Log": [
        {"ExitCode": 1, "End": "2026-01-01T00:00:01Z"},
        {"ExitCode": 0, "End": "2026-01-01T00:00:03.25Z"},
        {"ExitCode": 0, "End": "2025-12-31T23:00:00Z"},  # before this start: an earlier life of the container
    ]}}}
    assert health.start_to_healthy(info, 1_767_225_600.0, 1_767_225_700.0) == 3.25
    assert health.start_to_healthy({"State": {"Health": {"Status": "healthy"}}}, 100.0, 104.0) == 4.0
    assert health.start_to_healthy({"State": {}}, 100.0, 104.0) is None


@pytest.fixture
def local_app() -> Iterator[int]:
    """A loopback HTTP app (no network beyond this host)."""

    class App(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"{self.path} {self.headers['Host']}".encode()
            self.send_response(200 if self.path == "/healthz" else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_http_get(local_app: int) -> None:
    assert health.http_get("127.0.0.1", local_app, "/healthz", "notes.example.test") == (
        200, "/healthz notes.example.test")
    assert health.http_get("127.0.0.1", local_app, "/other", "x")[0] == 503
    code, why = health.http_get("127.0.0.1", local_app, "/healthz", "x", 2.0, True)  # TLS to a plain server
    assert code == 0
    assert why


# ---------------------------------------------------------------------------------------------------- the spec
def test_check_spec_and_public() -> None:
    with pytest.raises(Failed) as not_object:
        check_spec([])
    assert not_object.value.code == contract.EXIT_USAGE
    spec = {key: "x" for key in ("service", "version", "image_ref", "port", "domain", "health_path", "network",
                                 "env", "secret_env", "registry_password")}
    assert check_spec(spec) is spec
    assert set(public(spec)) == set(spec) - {"secret_env", "registry_password"}
    assert tuple(STEPS) == contract.STEPS


def test_file_sd_is_skipped_without_its_directory(world: World) -> None:
    world.image("v1.0.0")
    world.deploy("v1.0.0", "r1", file_sd_dir=str(world.tmp / "absent"))

    assert not os.path.exists(world.tmp / "absent")
    assert os.listdir(world.tmp / "targets") == []


def test_a_drain_that_timed_out_is_noted(world: World) -> None:
    world.image("v1.0.0")
    world.image("v2.0.0")
    world.deploy("v1.0.0", "r1")
    world.haproxy.servers[("be_notes_api", f"{SERVICE}-blue")].sessions = 2

    answer = world.deploy("v2.0.0", "r2", drain_timeout=1)

    assert answer["message"].endswith("; drain timed out (2 session(s) left)")
    assert answer["durations"]["drain"] >= 1
    assert prepare.revision(world.docker, world.spec("v2.0.0")) is None  # no database: no revision
