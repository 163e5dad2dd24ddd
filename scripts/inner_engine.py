#!/usr/bin/env python3
"""The images of a demo host's inner engine through its API socket, for a host without the `docker` command.

A fresh Debian 13 host runs Debian's docker.io engine but has no `docker` command until provisioning installs
docker-cli (the docker_engine role); provisioning itself needs the images first (the exporters' images on every
host: "Get the exporters' images" pulls, and this machine has no registry). scripts/local-host.sh copies this file
into such a host and runs it there with the host's python3 (standard library only):

    python3 inner_engine.py missing IMAGE...   print the IMAGEs the engine lacks, one a line
    python3 inner_engine.py load < archive.tar load a `docker save` archive from stdin (POST /images/load)
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import urllib.parse
from collections.abc import Sequence
from typing import BinaryIO

SOCKET = "/var/run/docker.sock"


class EngineConnection(http.client.HTTPConnection):
    """HTTP over the engine's Unix socket."""

    def __init__(self, path: str = SOCKET, timeout: float = 600) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def missing(images: Sequence[str], path: str = SOCKET) -> list[str]:
    """The images the engine has no image of (GET /images/<name>/json answers 404)."""
    lacking = []
    for image in images:
        conn = EngineConnection(path)
        try:
            conn.request("GET", f"/images/{urllib.parse.quote(image, safe='')}/json")
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        if response.status == 404:
            lacking.append(image)
        elif response.status != 200:
            raise RuntimeError(f"the engine answered HTTP {response.status} for image {image}")
    return lacking


def load(archive: BinaryIO, path: str = SOCKET) -> list[str]:
    """Stream a `docker save` archive to POST /images/load; the engine's progress lines, or an error naming its
    message."""
    conn = EngineConnection(path)
    try:
        conn.request("POST", "/images/load?quiet=1", body=archive, encode_chunked=True,
                     headers={"Content-Type": "application/x-tar", "Transfer-Encoding": "chunked"})
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"the engine refused the archive: HTTP {response.status} {text.strip()[:300]}")
    lines = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        message = json.loads(raw)
        if "error" in message:
            raise RuntimeError(f"the engine failed to load the archive: {message['error']}")
        lines.append(str(message.get("stream", "")).strip())
    return [line for line in lines if line]


def main(argv: Sequence[str], stdin: BinaryIO, path: str = SOCKET) -> int:
    if argv[:1] == ["missing"]:
        print("\n".join(missing(argv[1:], path)))
        return 0
    if list(argv) == ["load"]:
        print("\n".join(load(stdin, path)))
        return 0
    print("usage: inner_engine.py missing IMAGE... | load < archive.tar", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:], sys.stdin.buffer))
    except (OSError, RuntimeError) as exc:
        print(f"inner_engine.py: {exc}", file=sys.stderr)
        sys.exit(1)
