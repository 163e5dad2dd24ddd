"""Add notes.tags (expand step: nullable, so the release before it keeps working).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Adding a nullable column without a default only touches the catalog: no table rewrite, a brief lock.
    op.add_column("notes", sa.Column("tags", postgresql.ARRAY(sa.Text), nullable=True))


def downgrade() -> None:
    op.drop_column("notes", "tags")
