"""Connection parameters shared by every process: the engine's schema on the search_path."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row


def connect_kwargs(schema: str, *, application_name: str = "bi-engine") -> dict[str, Any]:
    """psycopg keyword arguments: unqualified names (procrastinate's) resolve in ``schema``."""
    return {
        "options": f"-c search_path={schema},public",
        "application_name": application_name,
    }


async def connect(
    database_url: str, schema: str, *, autocommit: bool = True, application_name: str = "bi-engine"
) -> psycopg.AsyncConnection[dict[str, Any]]:
    """A dedicated connection (listeners, one-off CLI commands)."""
    return await psycopg.AsyncConnection.connect(
        database_url,
        autocommit=autocommit,
        row_factory=dict_row,
        **connect_kwargs(schema, application_name=application_name),
    )


def connect_sync(
    database_url: str, schema: str, *, autocommit: bool = True, application_name: str = "bi-engine"
) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(
        database_url,
        autocommit=autocommit,
        row_factory=dict_row,
        **connect_kwargs(schema, application_name=application_name),
    )
