"""The audit log (CONTRACT section 10): who asked for what, from where, and how it ended."""

from __future__ import annotations

import uuid
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
