"""Alembic environment for notes-api.

- Connects with MIGRATION_DATABASE_URL (the owner role that may run DDL), else DATABASE_URL.
- Sets lock_timeout (MIGRATION_LOCK_TIMEOUT, default 5s) so a migration waiting for a lock held by live
  traffic fails fast instead of queueing every request behind it.
- Runs each revision in its own transaction: PostgreSQL's transactional DDL rolls a failed revision back
  completely, alembic_version included.
- FAIL_MIGRATION=1 (a test switch) makes the newest revision fail after its DDL and version update ran,
  inside that transaction, so the rollback is what a real mid-migration failure looks like.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping
from logging.config import fileConfig
from typing import Any

import sqlalchemy as sa
from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from notes_api.config import lock_timeout, migration_database_url, parse_bool
from notes_api.schema import metadata

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)
log = logging.getLogger("alembic.env.notes_api")


class InjectedMigrationFailure(RuntimeError):
    """Raised on purpose by the FAIL_MIGRATION switch."""


def _fail_after_newest_revision(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    """on_version_apply callback: runs inside the revision's transaction, after its DDL."""
    del ctx, heads, run_args
    if not parse_bool("FAIL_MIGRATION", os.environ.get("FAIL_MIGRATION")):
        return
    newest = context.script.get_current_head()
    if step.is_upgrade and newest in step.up_revision_ids:
        raise InjectedMigrationFailure(
            f"FAIL_MIGRATION is set: revision {newest} ran its DDL and is now failing on purpose; "
            "PostgreSQL rolls the whole revision back"
        )


def run_migrations_offline() -> None:
    context.configure(
        url=migration_database_url(),
        target_metadata=metadata,
        literal_binds=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    timeout = lock_timeout(os.environ.get("MIGRATION_LOCK_TIMEOUT"))
    engine = sa.create_engine(
        migration_database_url(),
        poolclass=sa.pool.NullPool,
        connect_args={
            "connect_timeout": 10,
            "application_name": "notes-api migrations",
            "options": f"-c lock_timeout={timeout}",
        },
    )
    log.info("lock_timeout=%s, one transaction per revision", timeout)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            transaction_per_migration=True,
            transactional_ddl=True,
            on_version_apply=_fail_after_newest_revision,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
