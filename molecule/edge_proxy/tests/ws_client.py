"""WebSocket client for the edge proxy scenario (runs on the test host): through the proxy on 127.0.0.1:80,
upgrade, send each argument as a text frame (a pause between them), print the handshake and the replies as JSON.

    python3 ws_client.py <Host header> <message>...
"""

import base64
import hashlib
import json
import os
import socket
import sys
import time

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


def read_frame(conn: socket.socket) -> tuple[int, bytes]:
    head = conn.recv(2, socket.MSG_WAITALL)
    length = head[1] & 0x7F
    return head[0] & 0x0F, conn.recv(length, socket.MSG_WAITALL) if length else b""


host, messages = sys.argv[1], sys.argv[2:]
key = base64.b64encode(os.urandom(16)).decode()
conn = socket.create_connection(("127.0.0.1", 80), timeout=10)
conn.sendall(
    f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
)
head = b""
while b"\r\n\r\n" not in head:
    chunk = conn.recv(1)
    if not chunk:
        break
    head += chunk
lines = head.decode().split("\r\n")
headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if ":" in line)}
expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()  # noqa: S324 - RFC 6455
replies = []
if " 101 " in lines[0]:
    for i, message in enumerate(messages):
        if i:
            time.sleep(2)
        conn.sendall(frame(0x1, message.encode()))
        replies.append(read_frame(conn)[1].decode())
    conn.sendall(frame(0x8, b""))
    closed = read_frame(conn)[0] == 0x8
else:
    closed = False
print(json.dumps({"status_line": lines[0], "accept_ok": headers.get("sec-websocket-accept") == expected,
                  "replies": replies, "closed": closed}))
