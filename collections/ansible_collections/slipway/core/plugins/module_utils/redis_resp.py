"""A minimal Redis client (RESP2 over TCP, optionally TLS) for the modules that talk to a Redis someone else runs.

Only what the modules need: send a command as an array of bulk strings, read one reply. The host's python3 has no
Redis library, and a module must not depend on one; the protocol for this much is a page
(https://redis.io/docs/latest/develop/reference/protocol-spec/). Runs on the managed host's python3 (3.8+).
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the hosts' python3 may be 3.8, where list[...] is no runtime expression
    from typing import TypeAlias

    Reply: TypeAlias = "int | str | list[Reply] | None"


class RedisError(Exception):
    """The server answered with an error reply (`-ERR ...`, `-NOPERM ...`, `-WRONGPASS ...`)."""


class Connection:
    """One connection to one server; `call` sends a command and returns its reply (errors raise RedisError)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0, tls: bool = False,
                 ca_file: str | None = None) -> None:
        raw = socket.create_connection((host, port), timeout=timeout)
        if tls:
            context = ssl.create_default_context(cafile=ca_file or None)
            self._sock: socket.socket = context.wrap_socket(raw, server_hostname=host)
        else:
            self._sock = raw
        self._file = self._sock.makefile("rb")

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self._sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, *args: str) -> Reply:
        """Send one command; its reply: None (nil), int, str (simple and bulk strings) or a list of those."""
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg.encode("utf-8")
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self._sock.sendall(b"".join(out))
        return self._read()

    def _line(self) -> bytes:
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("the server closed the connection")
        return line[:-2]

    def _read(self) -> Reply:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", "replace")
        if kind == b"-":
            raise RedisError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self._file.read(size + 2)
            if len(data) != size + 2:
                raise ConnectionError("the server closed the connection")
            return data[:-2].decode("utf-8", "replace")
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._read() for _ in range(count)]
        raise ConnectionError(f"unexpected reply from the server: {line[:40]!r}")
