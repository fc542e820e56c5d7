"""The audit log (CONTRACT section 10): who asked for what, from where, and how it ended."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from psycopg.types.json import Jsonb

_INSERT: Final = """
INSERT INTO audit_log (user_id, action, analysis_type, job_id, ip, result, request_id, details)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""


async def record(
    conn: psycopg.AsyncConnection[Any],
    *,
    user_id: str | None,
    action: str,
    result: str,
    analysis_type: str | None = None,
    job_id: uuid.UUID | None = None,
    ip: str | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """One audit row, inside the caller's transaction when there is one."""
    await conn.execute(
        _INSERT,
        (user_id, action, analysis_type, job_id, ip, result, request_id, Jsonb(details or {})),
    )


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit row, for :func:`record_many`."""

    user_id: str | None
    action: str
    result: str
    analysis_type: str | None = None
    job_id: uuid.UUID | None = None
    ip: str | None = None
    request_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


async def record_many(conn: psycopg.AsyncConnection[Any], entries: Sequence[Entry]) -> None:
    """Several audit rows (pipelined: one round trip in pipeline mode)."""
    async with conn.cursor() as cursor:
        await cursor.executemany(
            _INSERT,
            [
                (
                    e.user_id,
                    e.action,
                    e.analysis_type,
                    e.job_id,
                    e.ip,
                    e.result,
                    e.request_id,
                    Jsonb(e.details),
                )
                for e in entries
            ],
        )
