"""Alembic environment: one transaction, version table inside the engine's schema."""

from __future__ import annotations

import os

import psycopg
import sqlalchemy as sa
from alembic import context

from bi_engine import constants

config = context.config
schema = config.attributes.get("bi_schema") or os.environ.get(
    "BI_DB_SCHEMA", constants.DEFAULT_SCHEMA
)
config.attributes["bi_schema"] = schema


def _database_url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("DATABASE_URL is not set: point it at PostgreSQL")
    return str(url)


def run_offline() -> None:
    context.configure(
        url="postgresql+psycopg://",
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        version_table_schema=schema,
        transactional_ddl=True,
        output_buffer=config.attributes.get("output_buffer"),
    )
    with context.begin_transaction():
        context.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        context.run_migrations()


def run_online() -> None:
    url = _database_url()
    engine = sa.create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(url, autocommit=False),
        poolclass=sa.pool.NullPool,
    )
    with engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        connection.commit()
        context.configure(
            connection=connection,
            version_table_schema=schema,
            transactional_ddl=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
