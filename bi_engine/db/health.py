"""What ``GET /health`` and ``GET /metrics`` read from the database, one statement each.

Every part is served by an index: queued and running analyses by their partial indexes,
live workers by procrastinate's heartbeat index, circuit reports by ``reported_at``, recent
LLM calls by ``llm_calls_at_idx``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from psycopg.rows import dict_row

from bi_engine import constants

RECENT_CALLS_S: Final = 900.0
"""How far back ``GET /health`` summarises LLM call outcomes (15 minutes)."""

_QUEUED: Final = """
    (SELECT COALESCE(jsonb_object_agg(q.priority, q.n), '{}'::jsonb)
       FROM (SELECT priority, count(*) AS n FROM analyses WHERE status = 'queued'
              GROUP BY priority) q) AS queued"""
_WORKERS: Final = """
    (SELECT count(*) FROM procrastinate_workers
      WHERE last_heartbeat > now() - make_interval(secs => %(stalled)s)) AS workers"""

_GAUGES: Final = f"SELECT {_QUEUED}, {_WORKERS}"
_LIVE_WORKERS: Final = f"SELECT {_WORKERS}"
_SNAPSHOT: Final = f"""
SELECT {_QUEUED}, {_WORKERS},
    (SELECT count(*) FROM analyses WHERE status = 'running') AS running,
    (SELECT EXTRACT(EPOCH FROM now() - min(queued_at))::float8
       FROM analyses WHERE status = 'queued') AS oldest_queued_s,
    (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                'provider', c.provider, 'state', c.state, 'workers', c.n)), '[]'::jsonb)
       FROM (SELECT provider, state, count(*) AS n FROM llm_circuits
              WHERE reported_at > now() - make_interval(secs => %(stalled)s)
              GROUP BY provider, state) c) AS circuits,
    (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                'provider', r.provider, 'outcome', r.outcome, 'calls', r.n)), '[]'::jsonb)
       FROM (SELECT provider, outcome, count(*) AS n FROM llm_calls
              WHERE at > now() - make_interval(secs => %(recent)s)
              GROUP BY provider, outcome) r) AS recent_calls"""


@dataclass(frozen=True, slots=True)
class Gauges:
    """Queued analyses per priority (every priority present) and live procrastinate workers."""

    queued: dict[str, int]
    workers: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    gauges: Gauges
    running: int
    oldest_queued_s: float | None
    circuits: list[dict[str, Any]] = field(default_factory=list)
    """``{provider, state, workers}``: how many live workers report each state."""
    recent_calls: list[dict[str, Any]] = field(default_factory=list)
    """``{provider, outcome, calls}`` over the last :data:`RECENT_CALLS_S` seconds."""


def _gauges(row: dict[str, Any]) -> Gauges:
    queued = dict.fromkeys(constants.PRIORITIES, 0)
    queued.update({str(k): int(v) for k, v in (row["queued"] or {}).items()})
    return Gauges(queued=queued, workers=int(row["workers"]))


async def _row(conn: psycopg.AsyncConnection[Any], query: Any, params: Any) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        row = await cursor.fetchone()
    assert row is not None
    return row


async def gauges(conn: psycopg.AsyncConnection[Any], stalled_after_s: float) -> Gauges:
    """The scrape-time gauges of ``/metrics``: one statement."""
    return _gauges(await _row(conn, _GAUGES, {"stalled": stalled_after_s}))


async def live_workers(conn: psycopg.AsyncConnection[Any], stalled_after_s: float) -> int:
    """procrastinate workers with a heartbeat within ``stalled_after_s``."""
    row = await _row(conn, _LIVE_WORKERS, {"stalled": stalled_after_s})
    return int(row["workers"])


async def snapshot(conn: psycopg.AsyncConnection[Any], stalled_after_s: float) -> Snapshot:
    """Everything ``/health`` reports besides the database ping: one statement."""
    row = await _row(conn, _SNAPSHOT, {"stalled": stalled_after_s, "recent": RECENT_CALLS_S})
    oldest = row["oldest_queued_s"]
    return Snapshot(
        gauges=_gauges(row),
        running=int(row["running"]),
        oldest_queued_s=max(0.0, float(oldest)) if oldest is not None else None,
        circuits=list(row["circuits"]),
        recent_calls=list(row["recent_calls"]),
    )


async def ping(conn: psycopg.AsyncConnection[Any]) -> None:
    """One round trip: is the database answering?"""
    await conn.execute("SELECT 1")
