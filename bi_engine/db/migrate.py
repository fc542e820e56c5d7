"""Run the alembic migrations programmatically (``bi-engine migrate``)."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import TextIO

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(
    schema: str, database_url: str | None = None, *, stdout: TextIO | None = None
) -> Config:
    config = Config(stdout=stdout or sys.stdout)
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    config.attributes["bi_schema"] = schema
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, schema: str, revision: str = "head") -> None:
    """Bring the database to ``revision``; running it again is a no-op."""
    command.upgrade(alembic_config(schema, database_url), revision)


def downgrade(database_url: str, schema: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(schema, database_url), revision)


def upgrade_sql(schema: str, revision: str = "head") -> str:
    """The SQL that ``upgrade`` would run, rendered without a database."""
    buffer = io.StringIO()
    config = alembic_config(schema, stdout=buffer)
    config.attributes["output_buffer"] = buffer
    command.upgrade(config, revision, sql=True)
    return buffer.getvalue()


def current(database_url: str, schema: str) -> str:
    buffer = io.StringIO()
    command.current(alembic_config(schema, database_url, stdout=buffer))
    return buffer.getvalue().strip()
