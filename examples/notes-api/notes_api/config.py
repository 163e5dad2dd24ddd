"""Settings read from the environment: the contract the rollout relies on (see README.md).

Standard library only, so the migration environment and the container health probe can import it cheaply.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
_LOG_LEVELS = {"critical", "error", "warning", "info", "debug"}
# PostgreSQL duration: a number with an optional unit (lock_timeout accepts these units).
_PG_DURATION = re.compile(r"^\d+(us|ms|s|min|h|d)?$")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable and says what to change."""


def parse_bool(name: str, value: str | None) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean: use 1/0, true/false, yes/no or on/off")


def parse_number(name: str, value: str | None, default: float, minimum: float = 0) -> float:
    if value is None or not value.strip():
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number") from None
    if number < minimum:
        raise ConfigError(f"{name}={value!r} must be at least {minimum:g}")
    return number


def sqlalchemy_url(name: str, url: str) -> str:
    """Accept the usual libpq-style URL (postgres:// or postgresql://) and select the psycopg 3 driver."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"{name} must be a URL like postgresql://user:{{password}}@host:5432/dbname")
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        return f"postgresql+psycopg://{rest}"
    raise ConfigError(f"{name} uses scheme {scheme!r}; notes-api needs postgresql:// (PostgreSQL via psycopg 3)")


def lock_timeout(value: str | None) -> str:
    text = (value or "5s").strip()
    if not _PG_DURATION.match(text):
        raise ConfigError(
            f"MIGRATION_LOCK_TIMEOUT={value!r} is not a PostgreSQL duration: use e.g. 5s, 500ms or 1min"
        )
    return text


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    redis_key_prefix: str
    port: int
    app_version: str
    log_level: str
    fail_health: bool
    startup_delay: float
    shutdown_timeout: float
    keepalive_timeout: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        database_url = env.get("DATABASE_URL", "").strip()
        if not database_url:
            raise ConfigError("DATABASE_URL is not set: give the runtime (DML) user's PostgreSQL URL")
        redis_url = env.get("REDIS_URL", "").strip()
        if not redis_url:
            raise ConfigError("REDIS_URL is not set: give redis://<user>:{password}@<host>:6379/0")
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
        prefix = env.get("REDIS_KEY_PREFIX", "notes-api:")
        if not prefix or not prefix.endswith(":"):
            raise ConfigError(f"REDIS_KEY_PREFIX={prefix!r} must be non-empty and end with ':' (e.g. notes-api:)")
        port_text = env.get("PORT", "8000")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"PORT={port_text!r} is not a TCP port number")
        log_level = env.get("LOG_LEVEL", "info").strip().lower()
        if log_level not in _LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL={log_level!r} must be one of {', '.join(sorted(_LOG_LEVELS))}")
        return cls(
            database_url=sqlalchemy_url("DATABASE_URL", database_url),
            redis_url=redis_url,
            redis_key_prefix=prefix,
            port=int(port_text),
            app_version=env.get("APP_VERSION", "dev") or "dev",
            log_level=log_level,
            fail_health=parse_bool("FAIL_HEALTH", env.get("FAIL_HEALTH")),
            startup_delay=parse_number("STARTUP_DELAY", env.get("STARTUP_DELAY"), 0.0),
            shutdown_timeout=parse_number("SHUTDOWN_TIMEOUT", env.get("SHUTDOWN_TIMEOUT"), 25.0),
            keepalive_timeout=int(parse_number("KEEPALIVE_TIMEOUT", env.get("KEEPALIVE_TIMEOUT"), 75.0, 1)),
        )


def migration_database_url(env: Mapping[str, str] | None = None) -> str:
    """The owner role's URL for Alembic: MIGRATION_DATABASE_URL, else DATABASE_URL."""
    env = os.environ if env is None else env
    for name in ("MIGRATION_DATABASE_URL", "DATABASE_URL"):
        url = env.get(name, "").strip()
        if url:
            return sqlalchemy_url(name, url)
    raise ConfigError("neither MIGRATION_DATABASE_URL nor DATABASE_URL is set: Alembic needs the owner role's URL")
