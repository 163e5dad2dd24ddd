"""scripts/inner_engine.py against a stand-in engine: an HTTP server on a Unix socket in a temporary directory that
answers the two Engine API calls it uses (GET /images/<name>/json, POST /images/load). The real engine is used by
`make demo-cluster` (a fresh Debian 13 host has no `docker` command)."""

from __future__ import annotations

import importlib
import io
import json
import socketserver
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
inner_engine = importlib.import_module("inner_engine")


class FakeEngine:
    def __init__(self) -> None:
        self.images = {"slipway/test-haproxy:bookworm"}
        self.loaded: list[bytes] = []
        self.answer_error = ""


def _handler(engine: FakeEngine) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def address_string(self) -> str:
            return "unix"

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            name = urllib.parse.unquote(self.path.removeprefix("/images/").removesuffix("/json"))
            self._reply(200 if name in engine.images else 404, b"{}")

        def do_POST(self) -> None:
            assert self.path.startswith("/images/load")
            assert self.headers["Transfer-Encoding"] == "chunked"
            body = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
            engine.loaded.append(body)
            if engine.answer_error:
                lines = [{"error": engine.answer_error}]
            else:
                lines = [{"stream": "Loaded image: slipway/x:1\n"}, {"stream": "\n"}]
            self._reply(200, "".join(json.dumps(line) + "\r\n" for line in lines).encode())

    return Handler


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[FakeEngine, str]]:
    fake = FakeEngine()
    path = str(tmp_path / "docker.sock")
    server = _Server(path, _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, path
    finally:
        server.shutdown()
        server.server_close()


def test_missing_names_only_the_images_the_engine_lacks(engine: tuple[FakeEngine, str]) -> None:
    fake, path = engine
    wanted = ["slipway/test-haproxy:bookworm", "slipway/notes-api:v1.0.0"]
    assert inner_engine.missing(wanted, path) == ["slipway/notes-api:v1.0.0"]
    fake.images.add("slipway/notes-api:v1.0.0")
    assert inner_engine.missing(wanted, path) == []


def test_load_streams_the_archive_and_returns_the_engine_s_lines(engine: tuple[FakeEngine, str]) -> None:
    fake, path = engine
    archive = bytes(range(256)) * 1000  # larger than one chunk
    assert inner_engine.load(io.BytesIO(archive), path) == ["Loaded image: slipway/x:1"]
    assert fake.loaded == [archive]


def test_an_error_in_the_engine_s_answer_fails_naming_it(engine: tuple[FakeEngine, str]) -> None:
    fake, path = engine
    fake.answer_error = "archive/tar: invalid tar header"
    with pytest.raises(RuntimeError, match="invalid tar header"):
        inner_engine.load(io.BytesIO(b"not a tar"), path)


def test_the_command_line(engine: tuple[FakeEngine, str], capsys: pytest.CaptureFixture[str]) -> None:
    _, path = engine
    assert inner_engine.main(["missing", "a:1"], io.BytesIO(), path) == 0
    assert capsys.readouterr().out.split() == ["a:1"]
    assert inner_engine.main(["load"], io.BytesIO(b"x"), path) == 0
    assert "Loaded image" in capsys.readouterr().out
    assert inner_engine.main(["pull", "a:1"], io.BytesIO(), path) == 2
    assert "usage" in capsys.readouterr().err


def test_no_engine_at_the_socket_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        inner_engine.missing(["a:1"], str(tmp_path / "none.sock"))
