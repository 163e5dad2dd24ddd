"""Add notes.archived_at and an index on it (expand step, backward compatible).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The "badmigration" test build runs this revision with FAIL_MIGRATION=1: its DDL runs, then the
revision fails and PostgreSQL rolls it back (see migrations/env.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notes", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_notes_archived_at", "notes", ["archived_at"])


def downgrade() -> None:
    op.drop_index("ix_notes_archived_at", table_name="notes")
    op.drop_column("notes", "archived_at")
