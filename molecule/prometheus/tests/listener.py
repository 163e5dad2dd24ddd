"""A fake Redis for the relay test: accept connections on PORT for SECONDS and print what each one sends
(repr), so `docker logs` shows whether a caller sent AUTH with a password."""

import socket
import sys
import time

port, seconds = int(sys.argv[1]), float(sys.argv[2])
deadline = time.monotonic() + seconds
with socket.create_server(("0.0.0.0", port)) as server:  # noqa: S104 - a throwaway container on the test network
    server.settimeout(0.5)
    print("listening", flush=True)
    while time.monotonic() < deadline:
        try:
            conn, peer = server.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(2)
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            print(f"connection from {peer[0]}: {data!r}", flush=True)
