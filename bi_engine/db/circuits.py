"""SQL for ``llm_circuits``: each worker process's LLM circuit breaker states.

Workers refresh their rows every few seconds; readers only trust rows refreshed within the
stalled-worker threshold, so a crashed worker's last report fades out by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import psycopg
from psycopg.types.json import Jsonb

_REPORT: Final = """
INSERT INTO llm_circuits (worker, provider, state, reported_at)
SELECT %(worker)s, s.provider, s.state, now()
  FROM jsonb_to_recordset(%(states)s) AS s(provider text, state text)
ON CONFLICT (worker, provider)
DO UPDATE SET state = EXCLUDED.state, reported_at = EXCLUDED.reported_at"""
_FORGET_WORKER: Final = "DELETE FROM llm_circuits WHERE worker = %s"
_FORGET_STALE: Final = (
    "DELETE FROM llm_circuits WHERE reported_at < now() - make_interval(secs => %s)"
)
STALE_AFTER_S: Final = 3600.0
"""Rows of workers gone for this long are deleted by the next report of any worker."""


async def report(
    conn: psycopg.AsyncConnection[Any], worker: str, states: Mapping[str, str]
) -> None:
    """Upsert this worker's state per provider, and drop long-dead workers' rows."""
    rows = [{"provider": provider, "state": state} for provider, state in states.items()]
    if rows:
        await conn.execute(_REPORT, {"worker": worker, "states": Jsonb(rows)})
    await conn.execute(_FORGET_STALE, (STALE_AFTER_S,))


async def forget(conn: psycopg.AsyncConnection[Any], worker: str) -> None:
    """A worker that stops removes its report."""
    await conn.execute(_FORGET_WORKER, (worker,))
