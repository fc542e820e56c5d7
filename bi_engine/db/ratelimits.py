"""Sliding-window rate limits kept in Postgres, exact across every API replica.

One transaction per decision, sent as one pipeline (a single round trip) and committed
without waiting for the WAL flush: an advisory lock on (user, bucket) serialises concurrent
requests of the same user, then one statement counts the hits of the last window, records a
hit only when the request is allowed (refused requests do not count) and forgets the user's
hits that left the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

# A hit lost in a database crash only lets a user in once more: no WAL flush to wait for.
_NO_FLUSH = "SET LOCAL synchronous_commit TO off"
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%(user)s || '|' || %(bucket)s, 0))"
# A separate statement after the lock: READ COMMITTED takes a fresh snapshot per statement,
# so the count sees every hit committed by whoever held the lock before us.
_DECIDE = """
WITH window_hits AS (
    SELECT count(*) AS used, min(at) AS oldest
      FROM rate_limit_hits
     WHERE user_id = %(user)s AND bucket = %(bucket)s
       AND at > clock_timestamp() - make_interval(secs => %(window)s)
), recorded AS (
    INSERT INTO rate_limit_hits (user_id, bucket)
    SELECT %(user)s, %(bucket)s FROM window_hits WHERE used < %(limit)s
    RETURNING 1
), forgotten AS (
    DELETE FROM rate_limit_hits
     WHERE user_id = %(user)s AND bucket = %(bucket)s
       AND at < clock_timestamp() - make_interval(secs => %(window)s)
       AND EXISTS (SELECT 1 FROM recorded)
)
SELECT used, EXTRACT(EPOCH FROM (oldest + make_interval(secs => %(window)s)
                                 - clock_timestamp()))::float8 AS reset_s
  FROM window_hits
"""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    """Seconds until a slot frees up (0 when one is free now)."""


async def decide(
    conn: psycopg.AsyncConnection[Any], user_id: str, bucket: str, limit: int, window_s: float
) -> Decision:
    """Allow and record one hit, or refuse without recording; commits its own transaction."""
    params = {"user": user_id, "bucket": bucket, "window": window_s, "limit": limit}
    async with conn.pipeline(), conn.transaction():
        await conn.execute(_NO_FLUSH)
        await conn.execute(_LOCK, params)
        cursor = await conn.execute(_DECIDE, params)
    row = await cursor.fetchone()  # arrived with the pipeline's sync: one round trip in all
    used, reset_s = _unpack(row)
    if used >= limit:
        return Decision(False, limit, 0, max(reset_s or 0.0, 0.0))
    remaining = limit - used - 1
    return Decision(True, limit, remaining, 0.0 if remaining > 0 else max(reset_s or window_s, 0))


def _unpack(row: Any) -> tuple[int, float | None]:
    if row is None:
        return 0, None
    if isinstance(row, dict):
        return int(row["used"]), row["reset_s"]
    return int(row[0]), row[1]
