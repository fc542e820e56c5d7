"""Queries of the live layer: LISTEN, the server clock, stream access, and the feed of all jobs.

The feed of all jobs is read by the global ``analysis_events.id``: a time is first turned
into the id of the newest event older than it (a short backward walk of the primary key),
then events are read forward from that id, so no index on ``created_at`` is needed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

_CLOCK = "SELECT clock_timestamp() AS now"
_STREAM_INFO = "SELECT user_id, status, last_seq FROM analyses WHERE id = %s"
_FLOOR_BEFORE = "SELECT id FROM analysis_events WHERE created_at < %s ORDER BY id DESC LIMIT 1"
_CURSOR = (
    "SELECT e.created_at, a.user_id FROM analysis_events e JOIN analyses a ON a.id = e.job_id"
    " WHERE e.job_id = %s AND e.seq = %s"
)
_FEED = """
SELECT e.id, e.job_id, e.seq, e.kind, e.data, e.created_at, a.user_id
  FROM analysis_events e JOIN analyses a ON a.id = e.job_id
 WHERE e.id > %(after_id)s AND (%(owner)s::text IS NULL OR a.user_id = %(owner)s)
 ORDER BY e.id
 LIMIT %(limit)s
"""


async def listen(conn: psycopg.AsyncConnection[Any], channel: str) -> None:
    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))


async def server_clock(conn: psycopg.AsyncConnection[Any]) -> datetime:
    """The server's time: every NOTIFY committed before it has reached this connection."""
    row = await (await conn.execute(_CLOCK)).fetchone()
    return _column(row, "now", 0)  # type: ignore[no-any-return]


async def stream_info(
    conn: psycopg.AsyncConnection[Any], job_id: uuid.UUID | str
) -> dict[str, Any] | None:
    """``{"user_id", "status", "last_seq"}`` of a job, or ``None`` when it does not exist."""
    row = await (await conn.execute(_STREAM_INFO, (job_id,))).fetchone()
    if row is None:
        return None
    if isinstance(row, dict):
        return dict(row)
    return {"user_id": row[0], "status": row[1], "last_seq": row[2]}


async def cursor_event(
    conn: psycopg.AsyncConnection[Any], job_id: uuid.UUID | str, seq: int
) -> tuple[datetime, str] | None:
    """``(created_at, owner)`` of one event, or ``None`` when it does not exist."""
    row = await (await conn.execute(_CURSOR, (job_id, seq))).fetchone()
    if row is None:
        return None
    return _column(row, "created_at", 0), str(_column(row, "user_id", 1))


async def floor_id(conn: psycopg.AsyncConnection[Any], before: datetime) -> int:
    """The id of the newest event created before ``before`` (0 if none)."""
    row = await (await conn.execute(_FLOOR_BEFORE, (before,))).fetchone()
    return 0 if row is None else int(_column(row, "id", 0))


async def read_feed(
    conn: psycopg.AsyncConnection[Any], *, after_id: int, owner: str | None, limit: int
) -> list[dict[str, Any]]:
    """Events with ``id > after_id`` (of ``owner``'s jobs, or all), in insertion order."""
    params = {"after_id": after_id, "owner": owner, "limit": limit}
    rows = await (await conn.execute(_FEED, params)).fetchall()
    columns = ("id", "job_id", "seq", "kind", "data", "created_at", "user_id")
    return [row if isinstance(row, dict) else dict(zip(columns, row, strict=True)) for row in rows]


def _column(row: Any, name: str, index: int) -> Any:
    return row[name] if isinstance(row, dict) else row[index]
