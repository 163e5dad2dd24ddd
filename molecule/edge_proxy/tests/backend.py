"""Test backend for the edge proxy scenario: answers every GET with 200 "<service> <colour>" (keep-alive).

A GET with `Upgrade: websocket` gets 101 Switching Protocols (RFC 6455 handshake); then every text frame the
client sends comes back as "<service> <colour>: <text>", until the client closes.
"""

import base64
import hashlib
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE, COLOUR, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.websocket()
            return
        body = f"{SERVICE} {COLOUR} {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Powered-By", "test-backend")
        self.end_headers()
        self.wfile.write(body)

    def websocket(self) -> None:
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()  # noqa: S324 - RFC 6455
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(self.rfile.read(2), "big")
            elif length == 127:
                length = int.from_bytes(self.rfile.read(8), "big")
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 0x8:  # close: answer it and stop
                self.wfile.write(b"\x88\x00")
                self.wfile.flush()
                return
            reply = f"{SERVICE} {COLOUR}: {data.decode()}".encode()
            self.wfile.write(bytes([0x81, len(reply)]) + reply)  # short text frames only (test messages)
            self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("", PORT), Handler).serve_forever()
