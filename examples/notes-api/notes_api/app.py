"""The notes-api ASGI application: notes in PostgreSQL, view counters in Redis, health, version, metrics."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import redis
import sqlalchemy as sa
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import Settings
from .schema import image_migration_head, notes

log = logging.getLogger("notes_api")

MAX_SLEEP_SECONDS = 30.0
TAGS_REVISION = "0002"


class Metrics:
    """Prometheus collectors in a registry of their own (one per application, no global state)."""

    def __init__(self, version: str, schema_revision: str) -> None:
        # No *_created series: they double the output and nobody graphs them. prometheus_client leaves this function
        # untyped; `make lint` checks without the library installed (then it is Any and the ignore unused).
        disable_created_metrics()  # type: ignore[no-untyped-call,unused-ignore]
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total", "HTTP requests handled", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency from first byte received to last byte sent",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.in_flight = Gauge("http_requests_in_flight", "HTTP requests being handled", registry=self.registry)
        self.notes_created = Counter("notes_created_total", "Notes created", registry=self.registry)
        self.dependency_up = Gauge(
            "notes_api_dependency_up", "1 when the last health check reached the dependency",
            ["dependency"], registry=self.registry,
        )
        build = Gauge(
            "notes_api_build_info", "Version and schema revision of the running build",
            ["version", "schema_revision"], registry=self.registry,
        )
        build.labels(version=version, schema_revision=schema_revision).set(1)


class MetricsMiddleware:
    """Counts requests and measures latency per route template (not per raw path, to bound cardinality)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method=method, route=label, status=str(status)).inc()
            self.metrics.latency.labels(method=method, route=label).observe(time.perf_counter() - start)


class Services:
    """The connections one application instance holds: SQLAlchemy engine and Redis client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.schema_revision = image_migration_head()
        self.has_tags = self.schema_revision >= TAGS_REVISION
        self.engine = sa.create_engine(
            settings.database_url,
            pool_size=5,
            max_overflow=5,
            pool_timeout=3,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 2, "application_name": f"notes-api {settings.app_version}"},
        )
        self.redis = redis.Redis.from_url(
            settings.redis_url, socket_timeout=1.5, socket_connect_timeout=1.5, decode_responses=True
        )

    def key(self, *parts: str) -> str:
        """Every Redis key carries REDIS_KEY_PREFIX: the ACL user may touch nothing else."""
        return self.settings.redis_key_prefix + ":".join(parts)

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def _note_json(row: sa.Row[Any], has_tags: bool, views: int | None = None) -> dict[str, Any]:
    note: dict[str, Any] = {
        "id": row.id,
        "title": row.title,
        "body": row.body,
        "created_at": row.created_at.isoformat(),
    }
    if has_tags:
        note["tags"] = list(row.tags or [])
    if views is not None:
        note["views"] = views
    return note


def _columns(has_tags: bool) -> list[sa.Column[Any]]:
    cols = [notes.c.id, notes.c.title, notes.c.body, notes.c.created_at]
    return [*cols, notes.c.tags] if has_tags else cols


def index(request: Request) -> JSONResponse:
    services = _services(request)
    features = ["notes", "view-counter"] + (["tags"] if services.has_tags else [])
    return JSONResponse({
        "service": "notes-api",
        "version": services.settings.app_version,
        "features": features,
        "endpoints": ["/notes", "/notes/{id}", "/health", "/version", "/metrics"],
    })


def version(request: Request) -> JSONResponse:
    services = _services(request)
    return JSONResponse({
        "service": "notes-api",
        "version": services.settings.app_version,
        "schema_revision": services.schema_revision,
    })


def health(request: Request) -> JSONResponse:
    services = _services(request)
    metrics = _metrics(request)
    checks: dict[str, str] = {}
    try:
        with services.engine.connect() as conn:
            # Reads the table, so a missing migration or a missing grant shows here too.
            conn.execute(sa.select(notes.c.id).limit(0))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    try:
        services.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}: {str(exc)[:200]}"
    for name, result in checks.items():
        metrics.dependency_up.labels(dependency=name).set(1 if result == "ok" else 0)
    healthy = all(result == "ok" for result in checks.values())
    if services.settings.fail_health:
        checks["fail_health"] = "FAIL_HEALTH is set: this build reports unhealthy on purpose"
        healthy = False
    body = {"status": "ok" if healthy else "unavailable", "version": services.settings.app_version, "checks": checks}
    if not healthy:
        log.warning("health check failed: %s", checks)
    return JSONResponse(body, status_code=200 if healthy else 503)


def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(_metrics(request).registry), media_type=CONTENT_TYPE_LATEST)


def list_notes(request: Request) -> JSONResponse:
    services = _services(request)
    try:
        limit = int(request.query_params.get("limit", "20"))
    except ValueError:
        return JSONResponse({"error": "limit must be an integer"}, status_code=400)
    if not 1 <= limit <= 100:
        return JSONResponse({"error": "limit must be between 1 and 100"}, status_code=400)
    query = sa.select(*_columns(services.has_tags)).order_by(notes.c.id.desc()).limit(limit)
    with services.engine.connect() as conn:
        rows = conn.execute(query).all()
    return JSONResponse({"notes": [_note_json(row, services.has_tags) for row in rows]})


def _new_note_values(data: Any, services: Services) -> dict[str, Any] | str:
    """The row to insert for a POST /notes body, or the reason it is refused."""
    if not isinstance(data, dict):
        return "body must be a JSON object"
    title, body, tags = data.get("title"), data.get("body", ""), data.get("tags")
    if not isinstance(title, str) or not 1 <= len(title) <= 200:
        return "title must be a string of 1 to 200 characters"
    if not isinstance(body, str) or len(body) > 10_000:
        return "body must be a string of at most 10000 characters"
    values: dict[str, Any] = {"title": title, "body": body, "created_at": dt.datetime.now(dt.UTC)}
    if tags is not None:
        if not services.has_tags:
            return f"tags need schema revision {TAGS_REVISION}; this build has {services.schema_revision}"
        if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 50 for t in tags):
            return "tags must be a list of strings of 1 to 50 characters"
        values["tags"] = tags
    return values


async def create_note(request: Request) -> JSONResponse:
    services = _services(request)
    try:
        data = await request.json()
    except ValueError:
        return JSONResponse({"error": "body must be JSON"}, status_code=400)
    values = _new_note_values(data, services)
    if isinstance(values, str):
        return JSONResponse({"error": values}, status_code=400)

    def insert() -> sa.Row[Any]:
        with services.engine.begin() as conn:
            return conn.execute(notes.insert().values(**values).returning(*_columns(services.has_tags))).one()

    row = await anyio.to_thread.run_sync(insert)
    _metrics(request).notes_created.inc()
    return JSONResponse(_note_json(row, services.has_tags), status_code=201)


def get_note(request: Request) -> JSONResponse:
    services = _services(request)
    note_id = request.path_params["note_id"]
    with services.engine.connect() as conn:
        row = conn.execute(sa.select(*_columns(services.has_tags)).where(notes.c.id == note_id)).one_or_none()
    if row is None:
        return JSONResponse({"error": f"note {note_id} not found"}, status_code=404)
    views: int | None
    try:
        views = int(services.redis.incr(services.key("note", str(note_id), "views")))
    except redis.RedisError as exc:
        # The counter is a nice-to-have: serve the note without it rather than fail the request.
        log.warning("view counter unavailable: %s", exc)
        views = None
    return JSONResponse(_note_json(row, services.has_tags, views))


async def sleep(request: Request) -> JSONResponse:
    """A deliberately slow request (bounded), for drain and graceful-shutdown tests."""
    try:
        seconds = float(request.query_params.get("seconds", "1"))
    except ValueError:
        return JSONResponse({"error": "seconds must be a number"}, status_code=400)
    if not 0 <= seconds <= MAX_SLEEP_SECONDS:
        return JSONResponse({"error": f"seconds must be between 0 and {MAX_SLEEP_SECONDS:g}"}, status_code=400)
    await anyio.sleep(seconds)
    return JSONResponse({"slept": seconds, "version": _services(request).settings.app_version})


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.error("database error on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"error": "database unavailable"}, status_code=503)


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.services = services
        log.info(
            "notes-api %s ready (schema revision %s, redis prefix %r)",
            settings.app_version, services.schema_revision, settings.redis_key_prefix,
        )
        try:
            yield
        finally:
            services.close()
            log.info("notes-api %s stopped", settings.app_version)

    services = Services(settings)
    metrics = Metrics(settings.app_version, services.schema_revision)
    app = Starlette(
        routes=[
            Route("/", index),
            Route("/health", health),
            Route("/version", version),
            Route("/metrics", metrics_endpoint),
            Route("/notes", list_notes, methods=["GET"]),
            Route("/notes", create_note, methods=["POST"]),
            Route("/notes/{note_id:int}", get_note),
            Route("/debug/sleep", sleep),
        ],
        exception_handlers={sa.exc.OperationalError: database_unavailable},
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
