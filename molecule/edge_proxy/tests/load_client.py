"""Bounded, strict HTTP client loop for the edge proxy scenario (no retries).

Runs `keepalive` workers that reuse one connection each and `fresh` workers that open a new connection per
request, all against 127.0.0.1, for at most `seconds` seconds and `max_requests` requests per worker.
Prints one JSON object: requests, errors (with the first few reasons), answers per colour, and `timeline`: the
requests answered with 200 in each tenth of a second of wall-clock time (key: int(time.time() * 10)), so a test
can count the requests answered while something (a reload, an engine restart) was happening.
"""

import http.client
import json
import sys
import threading
import time
from collections import Counter

HOST, PORT, HOSTNAME, SECONDS, KEEPALIVE, FRESH, MAX_REQUESTS = (
    sys.argv[1],
    int(sys.argv[2]),
    sys.argv[3],
    float(sys.argv[4]),
    int(sys.argv[5]),
    int(sys.argv[6]),
    int(sys.argv[7]),
)
lock = threading.Lock()
answers: Counter[str] = Counter()
timeline: Counter[int] = Counter()
errors: list[str] = []
stop_at = time.monotonic() + SECONDS


def record(ok: str | None, error: str | None) -> None:
    tick = int(time.time() * 10)
    with lock:
        if ok is not None:
            answers[ok] += 1
            timeline[tick] += 1
        if error is not None:
            errors.append(error)


def worker(keepalive: bool) -> None:
    conn = http.client.HTTPConnection(HOST, PORT, timeout=5)
    for n in range(MAX_REQUESTS):
        if time.monotonic() > stop_at:
            break
        if not keepalive:
            conn = http.client.HTTPConnection(HOST, PORT, timeout=5)
        try:
            conn.request(
                "GET", f"/load/{n}", headers={"Host": HOSTNAME, "Connection": "keep-alive" if keepalive else "close"}
            )
            resp = conn.getresponse()
            body = resp.read().decode()
            if resp.status == 200:
                record(body.split()[1], None)
            else:
                record(None, f"status {resp.status}: {body.strip()[:80]}")
        except Exception as err:  # every failure counts
            record(None, f"{type(err).__name__}: {err}")
            conn.close()
            conn = http.client.HTTPConnection(HOST, PORT, timeout=5)
        if not keepalive:
            conn.close()
        time.sleep(0.002)
    conn.close()


threads = [threading.Thread(target=worker, args=(True,)) for _ in range(KEEPALIVE)]
threads += [threading.Thread(target=worker, args=(False,)) for _ in range(FRESH)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(
    json.dumps(
        {
            "requests": sum(answers.values()) + len(errors),
            "errors": len(errors),
            "error_samples": errors[:5],
            "answers": dict(answers),
            "timeline": {str(tick): count for tick, count in sorted(timeline.items())},
        }
    )
)
