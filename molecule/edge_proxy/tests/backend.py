"""Test backend for the edge proxy scenario: answers every GET with 200 "<service> <colour>" (keep-alive)."""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE, COLOUR, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"{SERVICE} {COLOUR} {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Powered-By", "test-backend")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("", PORT), Handler).serve_forever()
