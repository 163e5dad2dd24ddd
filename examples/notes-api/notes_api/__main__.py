"""Entry point: `python -m notes_api` serves the API with uvicorn on 0.0.0.0:$PORT.

SIGTERM (docker stop) shuts down gracefully: stop accepting, finish in-flight requests (at most
SHUTDOWN_TIMEOUT seconds), close idle keep-alive connections, release DB/Redis connections, exit 0.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from types import FrameType

from .config import ConfigError, Settings

log = logging.getLogger("notes_api")


class _StopFlag:
    """SIGTERM/SIGINT before the server runs: remember it (as PID 1 the default action would be to ignore it)."""

    def __init__(self) -> None:
        self.stopped = False

    def __call__(self, sig: int, _frame: FrameType | None) -> None:
        self.stopped = True


def _wait_before_listening(seconds: float, stop: _StopFlag) -> None:
    """STARTUP_DELAY: sleep before opening the port, unless a stop signal arrives."""
    log.info("STARTUP_DELAY=%gs: waiting before listening", seconds)
    deadline = time.monotonic() + seconds
    while not stop.stopped and time.monotonic() < deadline:
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def main() -> int:
    stop = _StopFlag()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"notes-api: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # reading the image's revisions is not news
    if settings.startup_delay > 0:
        _wait_before_listening(settings.startup_delay, stop)

    # Imported only now: the signal handler above is in place before the slow imports.
    import uvicorn  # noqa: PLC0415

    from .app import create_app  # noqa: PLC0415

    app = create_app(settings)
    if stop.stopped:
        log.info("stop signal before listening: exiting without serving")
        return 0

    config = uvicorn.Config(
        app,
        host="0.0.0.0",  # noqa: S104 - inside a container; the port is published or reached on the bridge network
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        # Longer than a proxy's idle timeout, so the proxy never reuses a connection the app is closing.
        timeout_keep_alive=settings.keepalive_timeout,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        server_header=False,
        proxy_headers=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)

    # uvicorn installs its own handlers while it runs and, once shutdown is done, re-raises the signal it
    # caught to mimic the default action (death by SIGTERM, exit status 143). A graceful stop is a success
    # here, so the re-raised signal lands in this handler instead, and the process exits 0. A signal in the
    # instant before uvicorn's handlers are in place makes it exit right after startup.
    def on_term_after_shutdown(sig: int, _frame: FrameType | None) -> None:
        server.should_exit = True
        log.info("shut down gracefully after signal %d", sig)

    signal.signal(signal.SIGTERM, on_term_after_shutdown)
    signal.signal(signal.SIGINT, on_term_after_shutdown)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
