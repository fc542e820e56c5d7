"""Helpers for revisions that are plain SQL with the schema name templated in."""

from __future__ import annotations

from alembic import context, op

SCHEMA_PLACEHOLDER = "__SCHEMA__"


def schema() -> str:
    """The target schema, handed over by ``env.py`` (validated as an identifier there)."""
    value = context.config.attributes.get("bi_schema")
    if not isinstance(value, str):
        raise RuntimeError("env.py must set config.attributes['bi_schema']")
    return value


def execute(sql: str) -> None:
    """Run ``sql`` with ``__SCHEMA__`` replaced; works online and in ``--sql`` mode."""
    op.execute(sql.replace(SCHEMA_PLACEHOLDER, schema()))
