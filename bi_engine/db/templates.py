"""SQL for ``templates``: saved custom-analysis templates, scoped to their owner.

``owner`` None means an admin: every template is visible and may be changed.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

Row = dict[str, Any]
Connection = psycopg.AsyncConnection[Any]

_COLUMNS: Final = (
    "id, owner_id, name, description, analysis_type, question, config, created_at, updated_at"
)
_SCOPE: Final = "(%(owner)s::text IS NULL OR owner_id = %(owner)s)"

_LIST: Final = f"""
SELECT {_COLUMNS} FROM templates WHERE {_SCOPE} ORDER BY name, id LIMIT %(limit)s"""
_GET: Final = f"SELECT {_COLUMNS} FROM templates WHERE id = %(id)s AND {_SCOPE}"
_INSERT: Final = f"""
INSERT INTO templates (owner_id, name, description, analysis_type, question, config)
VALUES (%(owner)s, %(name)s, %(description)s, %(analysis_type)s, %(question)s, %(config)s)
RETURNING {_COLUMNS}"""
_UPDATE: Final = f"""
UPDATE templates
   SET name = %(name)s, description = %(description)s, analysis_type = %(analysis_type)s,
       question = %(question)s, config = %(config)s, updated_at = now()
 WHERE id = %(id)s AND {_SCOPE}
RETURNING {_COLUMNS}"""
_DELETE: Final = f"DELETE FROM templates WHERE id = %(id)s AND {_SCOPE} RETURNING id"
_EXISTS: Final = f"SELECT 1 FROM templates WHERE id = %(id)s AND {_SCOPE}"
_FOR_RUN: Final = f"SELECT {_COLUMNS} FROM templates WHERE id = %(id)s"


def _fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {**fields, "config": Jsonb(fields.get("config") or {})}


async def _one(conn: Connection, query: str, params: dict[str, Any]) -> Row | None:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchone()


async def list_for(conn: Connection, owner: str | None, *, limit: int) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_LIST, {"owner": owner, "limit": limit})
        return await cursor.fetchall()


async def get(conn: Connection, template_id: uuid.UUID, owner: str | None) -> Row | None:
    return await _one(conn, _GET, {"id": template_id, "owner": owner})


async def insert(conn: Connection, owner: str, fields: dict[str, Any]) -> Row:
    """Raises ``psycopg.errors.UniqueViolation`` when the owner already uses the name."""
    row = await _one(conn, _INSERT, {**_fields(fields), "owner": owner})
    assert row is not None
    return row


async def update(
    conn: Connection, template_id: uuid.UUID, owner: str | None, fields: dict[str, Any]
) -> Row | None:
    """Replace every field; None when there is no such template for ``owner``."""
    return await _one(conn, _UPDATE, {**_fields(fields), "id": template_id, "owner": owner})


async def delete(conn: Connection, template_id: uuid.UUID, owner: str | None) -> bool:
    return await _one(conn, _DELETE, {"id": template_id, "owner": owner}) is not None


async def exists(conn: Connection, template_id: uuid.UUID, owner: str | None) -> bool:
    """May ``owner`` (None: an admin) use this template in a submission?"""
    return await _one(conn, _EXISTS, {"id": template_id, "owner": owner}) is not None


async def for_run(conn: Connection, template_id: uuid.UUID | str) -> Row | None:
    """The template a running job names (its access was checked when it was submitted)."""
    return await _one(conn, _FOR_RUN, {"id": template_id})
