"""notes-api's Alembic migrations, run as the rollout runs them: `alembic upgrade head` in a one-off container
of the image, with the owner role, against a real PostgreSQL."""

from __future__ import annotations

import subprocess
import time

import pytest
from notes_api_support import DB_OWNER, HARDENING, Postgres, Redis, docker, env_args, migrate, service_env

pytestmark = pytest.mark.integration


def columns(pg: Postgres) -> list[str]:
    out = pg.psql("SELECT column_name FROM information_schema.columns WHERE table_name = 'notes' ORDER BY 1")
    return out.splitlines()


def revision(pg: Postgres) -> str:
    return pg.psql("SELECT string_agg(version_num, ',') FROM alembic_version")


def indexes(pg: Postgres) -> list[str]:
    return pg.psql("SELECT indexname FROM pg_indexes WHERE tablename = 'notes' ORDER BY 1").splitlines()


def test_each_image_ships_migrations_up_to_its_head(images: dict[str, str]) -> None:
    expected = {"v1.0.0": "0001", "v2.0.0": "0002", "v3.0.0-badhealth": "0002", "v4.0.0-badmigration": "0003"}
    for tag, head in expected.items():
        out = docker("run", "--rm", "--entrypoint", "ls", images[tag], "/app/migrations/versions").stdout
        revisions = sorted(name[:4] for name in out.split() if name.endswith(".py"))
        assert revisions[-1] == head, f"{tag} ships {revisions}"


def test_v1_then_v2_create_schema_as_owner(images: dict[str, str], pg: Postgres, redis_srv: Redis) -> None:
    env = service_env(pg, redis_srv)
    first = migrate(images["v1.0.0"], env)
    assert first.returncode == 0, first.stderr
    assert "lock_timeout=5s" in first.stderr
    assert revision(pg) == "0001"
    assert columns(pg) == ["body", "created_at", "id", "title"]
    assert pg.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'notes'") == DB_OWNER

    second = migrate(images["v2.0.0"], env)
    assert second.returncode == 0, second.stderr
    assert "Running upgrade 0001 -> 0002" in second.stderr
    assert revision(pg) == "0002"
    assert "tags" in columns(pg)
    assert pg.psql("SELECT is_nullable FROM information_schema.columns "
                   "WHERE table_name = 'notes' AND column_name = 'tags'") == "YES"

    again = migrate(images["v2.0.0"], env)
    assert again.returncode == 0, again.stderr
    assert "Running upgrade" not in again.stderr
    assert revision(pg) == "0002"


def test_migrations_fall_back_to_database_url(images: dict[str, str], pg: Postgres, redis_srv: Redis) -> None:
    env = {"DATABASE_URL": pg.owner_url, "REDIS_URL": redis_srv.app_url}
    result = migrate(images["v1.0.0"], env)
    assert result.returncode == 0, result.stderr
    assert revision(pg) == "0001"


def test_failing_migration_changes_nothing(images: dict[str, str], pg: Postgres, redis_srv: Redis) -> None:
    env = service_env(pg, redis_srv)
    assert migrate(images["v2.0.0"], env).returncode == 0
    before = (revision(pg), columns(pg), indexes(pg))

    bad = migrate(images["v4.0.0-badmigration"], env)
    assert bad.returncode != 0
    assert "Running upgrade 0002 -> 0003" in bad.stderr  # it got as far as the DDL
    assert "FAIL_MIGRATION is set" in bad.stderr
    assert (revision(pg), columns(pg), indexes(pg)) == before
    assert "archived_at" not in columns(pg)

    # The switch is overridable at run time: the same image migrates when it is switched off.
    good = migrate(images["v4.0.0-badmigration"], {**env, "FAIL_MIGRATION": "0"})
    assert good.returncode == 0, good.stderr
    assert revision(pg) == "0003"
    assert "archived_at" in columns(pg)
    assert "ix_notes_archived_at" in indexes(pg)


def test_lock_timeout_stops_a_blocked_migration(images: dict[str, str], pg: Postgres, redis_srv: Redis) -> None:
    """A long transaction holding a lock on notes must make the migration give up after lock_timeout,
    instead of waiting (and queueing every later query behind its ACCESS EXCLUSIVE request)."""
    env = service_env(pg, redis_srv)
    assert migrate(images["v1.0.0"], env).returncode == 0
    holder = subprocess.Popen(
        ["psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.superuser, "-d", "notes_api", "-Xq",
         "-c", "BEGIN; LOCK TABLE notes IN ACCESS SHARE MODE; SELECT pg_sleep(20); COMMIT;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while pg.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                      "WHERE c.relname = 'notes' AND l.granted") == "0":
            assert time.monotonic() < deadline, "the lock holder did not get its lock"
            time.sleep(0.1)
        start = time.monotonic()
        blocked = migrate(images["v2.0.0"], {**env, "MIGRATION_LOCK_TIMEOUT": "1s"})
        took = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert blocked.returncode != 0
    assert "lock timeout" in blocked.stderr
    assert took < 15, f"the migration waited {took:.1f} s despite lock_timeout=1s"
    assert revision(pg) == "0001"


def test_runtime_user_cannot_run_ddl(images: dict[str, str], pg: Postgres, redis_srv: Redis) -> None:
    """With only DATABASE_URL of the DML user, migrations fail: DDL belongs to the owner role."""
    result = migrate(images["v1.0.0"], {"DATABASE_URL": pg.user_url, "REDIS_URL": redis_srv.app_url})
    assert result.returncode != 0
    assert "permission denied" in result.stderr
    assert pg.psql("SELECT to_regclass('public.alembic_version') IS NULL") == "t"


def test_migration_container_runs_hardened(images: dict[str, str]) -> None:
    """The migration one-off runs with the same hardening as the service (read-only root, no caps)."""
    result = docker("run", "--rm", *HARDENING, *env_args({"DATABASE_URL": "postgresql://x@127.0.0.1:1/x"}),
                    images["v2.0.0"], "alembic", "heads", check=False)
    assert result.returncode == 0, result.stderr
    assert "0002 (head)" in result.stdout
