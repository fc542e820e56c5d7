"""The per-job event log: append with contiguous ``seq`` (one NOTIFY per call), read back."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

Event = dict[str, Any]
"""``{"kind": "progress", "data": {...}}`` when appending."""

_SELECT_AFTER = (
    "SELECT job_id, seq, kind, data, created_at FROM analysis_events"
    " WHERE job_id = %s AND seq > %s ORDER BY seq LIMIT %s"
)


async def append(
    conn: psycopg.AsyncConnection[Any], job_id: uuid.UUID | str, events: Sequence[Event]
) -> int:
    """Append ``events`` in order inside the caller's transaction; return the last seq."""
    cursor = await conn.execute(
        "SELECT append_events(%s, %s) AS last_seq", (job_id, Jsonb(list(events)))
    )
    row = await cursor.fetchone()
    return int(_first(row))


async def read_after(
    conn: psycopg.AsyncConnection[Any],
    job_id: uuid.UUID | str,
    after_seq: int,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Events of ``job_id`` with ``seq > after_seq``, oldest first (resume and replay)."""
    cursor = await conn.execute(_SELECT_AFTER, (job_id, after_seq, limit))
    rows = await cursor.fetchall()
    return [_as_dict(row) for row in rows]


def _first(row: Any) -> Any:
    if row is None:
        raise LookupError("append_events returned no row")
    return row["last_seq"] if isinstance(row, dict) else row[0]


def _as_dict(row: Any) -> dict[str, Any]:
    if isinstance(row, dict):
        return row
    job_id, seq, kind, data, created_at = row
    return {"job_id": job_id, "seq": seq, "kind": kind, "data": data, "created_at": created_at}
