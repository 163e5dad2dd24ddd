"""Try a TCP connection to each HOST:PORT given, from wherever it runs: reach.py HOST:PORT... -> JSON
{"HOST:PORT": true (connected) | false (refused, unreachable, timed out, no such name)}."""

import json
import socket
import sys

answer = {}
for address in sys.argv[1:]:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            answer[address] = True
    except OSError:
        answer[address] = False
print(json.dumps(answer))
