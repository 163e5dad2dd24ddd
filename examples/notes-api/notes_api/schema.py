"""Tables the service uses, and the schema revision this image ships (its newest Alembic revision)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

APP_DIR = Path(__file__).resolve().parent.parent
ALEMBIC_INI = APP_DIR / "alembic.ini"

metadata = sa.MetaData()

notes = sa.Table(
    "notes",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # Revision 0002 (expand): nullable, so releases built before it keep working against the new schema.
    sa.Column("tags", sa.ARRAY(sa.Text), nullable=True),
)


def image_migration_head() -> str:
    """The newest revision among the migrations baked into this image ("" when there are none)."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(APP_DIR / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head() or ""
