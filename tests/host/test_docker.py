"""docker.py: the `docker run` command line, and the Docker class against a fake `docker` executable on PATH and a
fake engine API on a Unix socket."""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slipway_core.host import docker as docker_mod
from slipway_core.host import registry
from slipway_core.host.docker import ContainerSpec, Docker, DockerError, registry_host

SECRET = "s3cret-password"  # pragma: allowlist secret

FAKE_DOCKER = """#!{python}
import json, os, sys, time
args = sys.argv[1:]
stdin = sys.stdin.read() if "--password-stdin" in args else ""
config = os.environ.get("DOCKER_CONFIG", "")
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps({{"argv": args, "stdin": stdin, "config": config,
                          "env": {{k: os.environ.get(k) for k in ("DATABASE_URL", "LOG_LEVEL")}}}}) + "\\n")
if args[0] == "slow":
    time.sleep(5)
if args[0] == "login":
    with open(os.path.join(config, "config.json"), "w") as handle:
        handle.write("{{}}")
with open(os.environ["FAKE_DOCKER_ANSWERS"]) as handle:
    answers = json.load(handle)
for prefix, code, out, err in answers:
    if args[:len(prefix)] == prefix:
        sys.stdout.write(out)
        sys.stderr.write(err)
        sys.exit(code)
"""


class FakeCli:
    def __init__(self, directory: Path) -> None:
        self.log = directory / "docker.log"
        self.answers_file = directory / "answers.json"
        self.answers: list[tuple[list[str], int, str, str]] = []
        self.save()

    def answer(self, prefix: list[str], code: int = 0, out: str = "", err: str = "") -> None:
        self.answers.insert(0, (prefix, code, out, err))
        self.save()

    def save(self) -> None:
        self.answers_file.write_text(json.dumps(self.answers))

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCli:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "docker"
    script.write_text(FAKE_DOCKER.format(python=sys.executable))
    script.chmod(0o755)
    fake = FakeCli(tmp_path)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(fake.log))
    monkeypatch.setenv("FAKE_DOCKER_ANSWERS", str(fake.answers_file))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    return fake


ROUTES: dict[str, tuple[int, bytes]] = {
    "/containers/notes-api-blue/json": (200, json.dumps({"Id": "c1", "State": {"Running": True}}).encode()),
    "/containers/ghost/json": (404, b'{"message": "No such container: ghost"}'),
    "/containers/broken/json": (500, b'{"message": "server error"}'),
    "/containers/garbled/json": (200, b"{not json"),
    "/images/registry.example.test:5000/notes-api:v1.0.0/json": (200, b'{"Id": "sha256:abc"}'),
    "/images/nothing:v1/json": (404, b'{"message": "No such image"}'),
    "/images/broken:v1/json": (500, b'{"message": "server error"}'),
    "/info": (200, json.dumps({"DockerRootDir": "/srv/docker", "Driver": "overlay2", "RegistryConfig": {
        "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": [],
        "IndexConfigs": {"docker.io": {"Name": "docker.io", "Secure": True}}}}).encode()),
}


@pytest.fixture
def api() -> Iterator[tuple[str, list[str]]]:
    """The engine's API socket: (its path, the paths asked)."""
    asked: list[str] = []

    class Engine(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            status, body = ROUTES.get(self.path, (404, b"{}"))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

        def address_string(self) -> str:
            return "unix"

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    with tempfile.TemporaryDirectory(prefix="slw-") as directory:
        path = os.path.join(directory, "docker.sock")
        server = Server(path, Engine)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        thread.start()
        yield path, asked
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------------- ContainerSpec
def test_argv_is_hardened_and_keeps_secrets_off_the_command_line() -> None:
    spec = ContainerSpec("notes-api-blue", "registry.example.test/notes-api:v1.0.0", "slipway",
                         env={"DATABASE_URL": SECRET, "A": "1"}, labels={"slipway.colour": "blue", "a": "b"},
                         restart_policy="unless-stopped", stop_timeout=30, health_interval="1s", pids_limit=128,
                         cpus="0.5", memory="256m")

    argv = spec.argv()

    assert argv[:8] == ["run", "--detach", "--hostname", "notes-api-blue", "--name", "notes-api-blue", "--network",
                        "slipway"]
    text = " ".join(argv)
    for flags in ("--cap-drop ALL", "--security-opt no-new-privileges", "--read-only",
                  "--tmpfs /tmp:rw,nosuid,nodev,size=64m", "--restart unless-stopped", "--stop-timeout 30",
                  "--health-interval 1s", "--pids-limit 128", "--cpus 0.5", "--memory 256m --memory-swap 256m",
                  "-e A -e DATABASE_URL", "--label a=b --label slipway.colour=blue"):
        assert flags in text
    assert SECRET not in text
    assert argv[-1] == "registry.example.test/notes-api:v1.0.0"


def test_argv_minimal_still_drops_privileges() -> None:
    argv = ContainerSpec("m", "img", "net", detach=False, read_only=False, command=["alembic", "upgrade"]).argv()

    assert argv == ["run", "--name", "m", "--network", "net", "--cap-drop", "ALL", "--security-opt",
                    "no-new-privileges", "img", "alembic", "upgrade"]


@pytest.mark.parametrize(
    ("ref", "registry"),
    [("notes-api:v1", None), ("library/python:3.12", None), ("registry.example.test/a/b:v1", "registry.example.test"),
     ("localhost:5000/a:v1", "localhost:5000"), ("localhost/a:v1", "localhost"), ("ghcr.io/o/a", "ghcr.io")],
)
def test_registry_host(ref: str, registry: str | None) -> None:
    assert registry_host(ref) == registry


def test_inspect_helpers() -> None:
    info = {"State": {"Running": True, "Health": {"Status": "starting"}}, "Config": {"Labels": {"a": "b"}},
            "NetworkSettings": {"Networks": {"slipway": {"IPAddress": "172.18.0.5"}, "other": {"IPAddress": ""}}}}
    assert docker_mod.container_ip(info, "slipway") == "172.18.0.5"
    assert docker_mod.container_ip(info, "other") is None
    assert docker_mod.health_status(info) == "starting"
    assert docker_mod.health_status({"State": {}}) is None
    assert docker_mod.running(info) and not docker_mod.running(None)
    assert docker_mod.labels(info) == {"a": "b"} and docker_mod.labels(None) == {}


# ------------------------------------------------------------------------------------------------- the engine
def test_reads_go_to_the_api_socket(cli: FakeCli, api: tuple[str, list[str]]) -> None:
    path, asked = api
    engine = Docker(socket_path=path)

    assert engine.inspect("notes-api-blue") == {"Id": "c1", "State": {"Running": True}}
    assert engine.inspect("ghost") is None
    assert engine.image_id("registry.example.test:5000/notes-api:v1.0.0") == "sha256:abc"
    assert engine.image_id("nothing:v1") is None
    assert cli.calls() == []  # no docker CLI started
    assert asked[0] == "/containers/notes-api-blue/json"


def test_reads_fall_back_to_the_cli(cli: FakeCli, api: tuple[str, list[str]]) -> None:
    path, _ = api
    cli.answer(["container", "inspect", "broken"], 0, json.dumps([{"Id": "c2"}]))
    cli.answer(["container", "inspect", "garbled"], 1, "", "Error: No such container: garbled")
    cli.answer(["image", "inspect"], 0, "sha256:def\n")
    engine = Docker(socket_path=path)

    assert engine.inspect("broken") == {"Id": "c2"}  # the API answered 500
    assert engine.inspect("garbled") is None  # unreadable API answer, then the CLI says no such container
    assert engine.image_id("broken:v1") == "sha256:def"  # the API answered 500
    assert ["container", "inspect", "broken"] in cli.argvs()


def test_without_a_socket_the_cli_answers(cli: FakeCli, tmp_path: Path) -> None:
    cli.answer(["image", "inspect"], 1, "", "No such image")
    engine = Docker(socket_path=str(tmp_path / "no.sock"))

    assert engine.image_id("a:v1") is None
    assert ["image", "inspect", "--format", "{{.Id}}", "a:v1"] in cli.argvs()
    cli.answer(["container", "inspect"], 0, "[]")
    assert Docker(socket_path="").inspect("x") is None  # no API socket at all: the CLI, which found nothing
    assert ["container", "inspect", "x"] in cli.argvs()


def test_the_data_root_from_the_api_or_the_cli(cli: FakeCli, api: tuple[str, list[str]], tmp_path: Path) -> None:
    path, asked = api
    assert Docker(socket_path=path).root_dir() == "/srv/docker"
    assert asked == ["/info"] and cli.calls() == []
    cli.answer(["info"], 0, "/var/lib/docker\n")
    assert Docker(socket_path=str(tmp_path / "no.sock")).root_dir() == "/var/lib/docker"
    assert ["info", "--format", "{{.DockerRootDir}}"] in cli.argvs()
    cli.answer(["info"], 1, "", "Cannot connect to the Docker daemon")
    assert Docker(socket_path="").root_dir() is None


def test_docker_host_sends_everything_to_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2375")
    assert Docker(socket_path="/var/run/docker.sock").socket_path == ""
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert Docker(socket_path="/var/run/docker.sock").socket_path == "/var/run/docker.sock"


def test_changes_go_through_the_cli(cli: FakeCli, tmp_path: Path) -> None:
    engine = Docker(socket_path="")
    spec = ContainerSpec("notes-api-blue", "img:v1", "slipway", env={"DATABASE_URL": SECRET, "LOG_LEVEL": "info"})
    cli.answer(["logs"], 0, "out line\n", "err line\n")
    cli.answer(["exec"], 3, "psql: error\n")

    engine.run(spec)
    engine.start("notes-api-blue")
    engine.stop("notes-api-blue", 10)
    engine.rename("notes-api-blue", "notes-api-blue-kept")
    engine.remove("notes-api-blue-kept")
    engine.kill("edge-proxy", "USR2")
    engine.load(str(tmp_path / "image.tar"))
    assert engine.logs("notes-api-blue", 50) == "out line\nerr line"
    assert engine.exec("postgres", ["psql", "-c", "x"], user="postgres") == (3, "psql: error\n")

    calls = cli.calls()
    assert calls[0]["argv"] == spec.argv()
    assert calls[0]["env"] == {"DATABASE_URL": SECRET, "LOG_LEVEL": "info"}  # in the environment only
    assert [c["argv"][:2] for c in calls[1:]] == [
        ["start", "notes-api-blue"], ["stop", "--time"], ["rename", "notes-api-blue"], ["rm", "-f"],
        ["kill", "--signal"], ["load", "--input"], ["logs", "--tail"], ["exec", "-u"]]
    assert calls[2]["argv"] == ["stop", "--time", "10", "notes-api-blue"]


def test_command_failures(cli: FakeCli) -> None:
    cli.answer(["rename"], 1, "", "Error: No such container: a\n")
    engine = Docker(socket_path="")

    with pytest.raises(DockerError, match="`docker rename a b` failed: Error: No such container: a"):
        engine.rename("a", "b")
    with pytest.raises(DockerError, match=r"`docker slow x` did not finish within 0.3s"):
        engine.command("slow", "x", timeout=0.3)
    assert engine.command("rename", "a", "b", check=False).returncode == 1
    with pytest.raises(DockerError, match="the docker command cannot run"):
        Docker(socket_path="", cli="/nonexistent/docker").start("x")


def test_pull_without_credentials(cli: FakeCli) -> None:
    cli.answer(["pull"], 1, "", "pull access denied for notes-api\n")
    engine = Docker(socket_path="")

    with engine.registry_login("registry.example.test/notes-api:v1.0.0") as env:
        assert env is None
        with pytest.raises(DockerError) as failed:
            engine.pull("registry.example.test/notes-api:v1.0.0", env)

    hint = "(no SLIPWAY_REGISTRY_USERNAME/SLIPWAY_REGISTRY_PASSWORD were given for a login)"
    assert str(failed.value).endswith(f"pull access denied for notes-api {hint}")
    assert [c["argv"][0] for c in cli.calls()] == ["pull"]
    assert cli.calls()[0]["config"] == ""


def test_pull_logs_in_through_a_temporary_config(cli: FakeCli) -> None:
    engine = Docker(socket_path="")
    ref = "registry.example.test/notes-api:v1.0.0"

    with engine.registry_login(ref, "deploy", SECRET) as env:
        engine.pull_size(ref, env)
        engine.pull(ref, env)

    login, manifest, pull = cli.calls()
    assert login["argv"] == ["login", "--username", "deploy", "--password-stdin", "registry.example.test"]
    assert login["stdin"] == SECRET
    assert SECRET not in " ".join(login["argv"])
    assert manifest["argv"][:2] == ["manifest", "inspect"]
    assert pull["config"] == manifest["config"] == login["config"] != ""  # the manifest is read logged in too
    assert not os.path.exists(login["config"])  # removed with the credentials in it


MANIFEST = {"SchemaV2Manifest": {"config": {"size": 7155}, "layers": [{"size": 49883418}, {"size": 98}]}}


def test_pull_size_is_the_manifest_s_blobs_and_asks_insecurely_only_where_the_engine_does(
        cli: FakeCli, api: tuple[str, list[str]]) -> None:
    engine = Docker(socket_path=api[0])
    cli.answer(["manifest"], 0, json.dumps({"Ref": "x", **MANIFEST}))

    assert engine.pull_size("registry.example.test/notes-api:v1.0.0", None) == (7155 + 49883418 + 98, "")
    assert engine.pull_size("127.0.0.1:5000/notes-api:v1.0.0", None)[0] > 0

    secure, loopback = cli.argvs()
    assert secure == ["manifest", "inspect", "--verbose", "registry.example.test/notes-api:v1.0.0"]
    assert loopback == ["manifest", "inspect", "--verbose", "--insecure", "127.0.0.1:5000/notes-api:v1.0.0"]
    assert "/info" in api[1]


def test_pull_size_unknown_says_why_and_never_raises(cli: FakeCli, api: tuple[str, list[str]],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Docker(socket_path=api[0])
    cli.answer(["manifest"], 1, "", "no such manifest: registry.example.test/notes-api:v9\n")
    assert engine.pull_size("registry.example.test/notes-api:v9", None) == (
        0, "docker manifest inspect failed: no such manifest: registry.example.test/notes-api:v9")
    cli.answer(["manifest"], 0, "not json")
    assert engine.pull_size("registry.example.test/notes-api:v9", None) == (
        0, "docker manifest inspect answered no JSON")
    cli.answer(["manifest"], 0, "{}")
    assert engine.pull_size("registry.example.test/notes-api:v9", None)[1].startswith("the manifest lists no image")
    monkeypatch.setattr(registry, "MANIFEST_TIMEOUT", 0.3)
    cli.answer(["slow"], 0, "")
    real = engine.command
    monkeypatch.setattr(engine, "command", lambda *args, **kw: real("slow", *args[1:], **kw))
    assert engine.pull_size("registry.example.test/notes-api:v9", None) == (
        0, "`docker slow inspect` did not finish within 0.3s")
    monkeypatch.setattr(engine, "command", real)

    calls = len(cli.calls())
    monkeypatch.setitem(ROUTES, "/info", (200, b'{"RegistryConfig": {"Mirrors": ["https://m.example.test/"]}}'))
    size, why = engine.pull_size("python:3.12-slim", None)
    assert size == 0 and "registry mirror" in why
    assert len(cli.calls()) == calls  # a Docker Hub image behind a mirror: docker manifest is not asked


def test_a_failed_login(cli: FakeCli) -> None:
    cli.answer(["login"], 1, "", "unauthorized: incorrect username or password\n")

    session = Docker(socket_path="").registry_login("notes-api:v1.0.0", "deploy", "wrong")
    with pytest.raises(DockerError, match="docker login to Docker Hub as deploy failed: unauthorized"), session:
        pass

    assert [c["argv"][0] for c in cli.calls()] == ["login"]
    assert cli.calls()[0]["argv"] == ["login", "--username", "deploy", "--password-stdin"]
