"""SQL for callback deliveries: what to send, and a row per attempt."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

_JOB = """
SELECT a.id, a.type, a.status, a.user_id, a.callback_url, a.error_code, a.error_message,
       a.finished_at, a.result -> 'analysis' -> 'summary' ->> 'headline' AS headline
  FROM analyses a WHERE a.id = %s
"""
_RECORD = """
INSERT INTO webhook_deliveries
    (job_id, url, event, attempt, status, http_status, error, duration_ms, next_attempt_at)
VALUES (%(job_id)s, %(url)s, %(event)s, %(attempt)s, %(status)s, %(http_status)s, %(error)s,
        %(duration_ms)s, %(next_attempt_at)s)
RETURNING id
"""
_DEAD_LETTERS = """
SELECT DISTINCT ON (d.job_id, d.event) d.job_id, d.event, d.url, d.attempt, d.created_at
  FROM webhook_deliveries d
 WHERE d.status = 'dead_letter' AND (%(job_id)s::uuid IS NULL OR d.job_id = %(job_id)s::uuid)
   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries later
                    WHERE later.job_id = d.job_id AND later.event = d.event
                      AND later.id > d.id)
 ORDER BY d.job_id, d.event, d.id DESC
"""


async def job_for_callback(
    conn: psycopg.AsyncConnection[Any], job_id: uuid.UUID | str
) -> dict[str, Any] | None:
    cursor = await conn.execute(_JOB, (job_id,))
    row = await cursor.fetchone()
    return dict(row) if row else None


async def record_attempt(conn: psycopg.AsyncConnection[Any], **values: Any) -> int:
    defaults = {"http_status": None, "error": None, "duration_ms": None, "next_attempt_at": None}
    cursor = await conn.execute(_RECORD, defaults | values)
    row = await cursor.fetchone()
    assert row is not None
    return int(row["id"] if isinstance(row, dict) else row[0])


async def dead_letters(
    conn: psycopg.AsyncConnection[Any], job_id: str | None = None
) -> list[dict[str, Any]]:
    """The latest attempt of every (job, event) whose delivery gave up."""
    cursor = await conn.execute(_DEAD_LETTERS, {"job_id": job_id})
    return [dict(row) for row in await cursor.fetchall()]


async def attempts(
    conn: psycopg.AsyncConnection[Any], job_id: uuid.UUID | str
) -> list[dict[str, Any]]:
    cursor = await conn.execute(
        "SELECT * FROM webhook_deliveries WHERE job_id = %s ORDER BY id", (job_id,)
    )
    return [dict(row) for row in await cursor.fetchall()]
