"""SQL for ``GET /stats``: activity of the caller's analyses (an admin's: everyone's).

One statement. Active analyses come from the partial indexes on queued and running rows;
the window figures read analyses finished since the window start (``analyses_finished_idx``)
and the Processing Tasks of the AI Assistants started within it.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
from psycopg.rows import dict_row

_SCOPE: Final = "(%(user)s::text IS NULL OR a.user_id = %(user)s)"
_SINCE: Final = "now() - make_interval(days => %(days)s)"
_TODAY: Final = "(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"

_OVERVIEW: Final = f"""
WITH finished AS (
    SELECT a.status, a.created_at, a.started_at, a.finished_at
      FROM analyses a
     WHERE a.finished_at >= {_SINCE} AND {_SCOPE}
), agents AS (
    SELECT t.agent,
           count(*) AS tasks,
           count(*) FILTER (WHERE t.status = 'completed') AS completed,
           count(*) FILTER (WHERE t.status = 'failed') AS failed,
           count(*) FILTER (WHERE t.status = 'running') AS running,
           count(DISTINCT t.job_id) AS analyses,
           COALESCE(sum(EXTRACT(EPOCH FROM (t.finished_at - t.started_at)))
                    FILTER (WHERE t.finished_at IS NOT NULL), 0)::float8 AS busy_seconds
      FROM agent_tasks t JOIN analyses a ON a.id = t.job_id
     WHERE t.started_at >= {_SINCE} AND {_SCOPE}
     GROUP BY t.agent
)
SELECT
    (SELECT count(*) FROM analyses a WHERE a.status = 'queued' AND {_SCOPE}) AS queued,
    (SELECT count(*) FROM analyses a WHERE a.status = 'running' AND {_SCOPE}) AS running,
    (SELECT count(*) FROM finished
      WHERE status = 'completed' AND finished_at >= {_TODAY}) AS completed_today,
    (SELECT count(*) FROM finished WHERE status = 'completed') AS completed,
    (SELECT count(*) FROM finished WHERE status = 'failed') AS failed,
    (SELECT count(*) FROM finished WHERE status = 'cancelled') AS cancelled,
    (SELECT avg(EXTRACT(EPOCH FROM (finished_at - created_at)))::float8
       FROM finished WHERE status = 'completed') AS avg_total_s,
    (SELECT avg(EXTRACT(EPOCH FROM (finished_at - started_at)))::float8
       FROM finished WHERE status = 'completed' AND started_at IS NOT NULL) AS avg_run_s,
    (SELECT COALESCE(jsonb_agg(to_jsonb(g) ORDER BY g.busy_seconds DESC, g.agent), '[]'::jsonb)
       FROM agents g) AS agents
"""


async def overview(
    conn: psycopg.AsyncConnection[Any], *, user_id: str | None, window_days: int
) -> dict[str, Any]:
    """Counts and averages for ``user_id`` (None: every user) over the last ``window_days``."""
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_OVERVIEW, {"user": user_id, "days": window_days})
        row = await cursor.fetchone()
    assert row is not None
    return row
