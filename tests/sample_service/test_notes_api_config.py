"""Configuration contract of notes-api (no Docker needed: notes_api.config is standard-library only)."""

from __future__ import annotations

import pytest
from notes_api.config import ConfigError, Settings, lock_timeout, migration_database_url

BASE = {
    "DATABASE_URL": "postgresql://notes_api:pw@db:5432/notes_api",  # pragma: allowlist secret
    "REDIS_URL": "redis://notes-api:pw@r:6379/0",  # pragma: allowlist secret
}


def test_defaults_and_driver_selection() -> None:
    settings = Settings.from_env(BASE)
    assert settings.database_url == "postgresql+psycopg://notes_api:pw@db:5432/notes_api"  # pragma: allowlist secret
    assert settings.port == 8000
    assert settings.redis_key_prefix == "notes-api:"
    assert settings.app_version == "dev"
    assert settings.fail_health is False
    assert settings.startup_delay == 0
    assert settings.keepalive_timeout == 75


def test_switches_parse() -> None:
    settings = Settings.from_env({**BASE, "FAIL_HEALTH": "yes", "STARTUP_DELAY": "2.5", "PORT": "9000"})
    assert settings.fail_health is True
    assert settings.startup_delay == 2.5
    assert settings.port == 9000


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"REDIS_URL": "redis://r"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://x@y/z"}, "REDIS_URL"),
        ({**BASE, "DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL"),
        ({**BASE, "REDIS_KEY_PREFIX": "notes-api"}, "REDIS_KEY_PREFIX"),
        ({**BASE, "PORT": "99999"}, "PORT"),
        ({**BASE, "FAIL_HEALTH": "maybe"}, "FAIL_HEALTH"),
        ({**BASE, "LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({**BASE, "STARTUP_DELAY": "-1"}, "STARTUP_DELAY"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        Settings.from_env(env)


def test_migration_url_prefers_owner_role() -> None:
    owner = "postgres://notes_api_owner:pw@db/notes_api"  # pragma: allowlist secret
    assert migration_database_url({**BASE, "MIGRATION_DATABASE_URL": owner}).startswith(
        "postgresql+psycopg://notes_api_owner:")
    assert migration_database_url(BASE).startswith("postgresql+psycopg://notes_api:")
    with pytest.raises(ConfigError, match="MIGRATION_DATABASE_URL"):
        migration_database_url({})


def test_lock_timeout_is_validated() -> None:
    assert lock_timeout(None) == "5s"
    assert lock_timeout("750ms") == "750ms"
    with pytest.raises(ConfigError, match="MIGRATION_LOCK_TIMEOUT"):
        lock_timeout("5s -c statement_timeout=0")
