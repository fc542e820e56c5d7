"""Worker-side SQL: one attempt's state changes, recovery, fairness, retention, listings.

Every state change of a running attempt is a compare-and-set on ``analyses.attempts``: an
attempt writes only while the row still says it owns it. A worker that was presumed dead
and comes back (or a duplicate execution) therefore changes nothing, and a job completes
exactly once.

Each write is ONE statement: the fenced UPDATE of the analysis and the INSERT of its events
(a data-modifying CTE), so it commits on its own in one round trip and fires one NOTIFY.
The events get contiguous ``seq`` numbers from ``last_seq`` exactly as
``append_events`` numbers them (the same row update reserves them), and nothing is logged
when the fence refuses the write.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, LiteralString

import psycopg
from psycopg.types.json import Jsonb

JobId = uuid.UUID | str
Row = dict[str, Any]
Event = dict[str, Any]

ACTIVE: Final = ("queued", "running")


@dataclass(frozen=True, slots=True)
class Fence:
    """The attempt that writes, and whether its start is already on the row.

    Until its first write an attempt expects ``attempts = attempt - 1`` and a waiting row;
    the first write claims the attempt number. Later writes expect the number it claimed.
    """

    attempt: int
    started: bool

    def params(
        self, job_id: JobId, elapsed_s: float, events: Sequence[Event] = ()
    ) -> dict[str, Any]:
        return {
            "id": job_id,
            "attempt": self.attempt,
            "started": self.started,
            "elapsed": max(0.0, elapsed_s),
            "events": Jsonb(list(events)),
        }


# The WHERE clause and the SET items every fenced write shares. ``started_at`` is the first
# start of the job, computed on the database clock (the CHECK compares it to created_at).
_FENCE: Final = """
 WHERE id = %(id)s
   AND CASE WHEN %(started)s THEN attempts = %(attempt)s AND status = 'running'
            ELSE attempts = %(attempt)s - 1 AND status IN ('queued', 'running') END"""
_CLAIM: Final = """attempts = %(attempt)s,
       started_at = COALESCE(started_at,
           GREATEST(created_at, clock_timestamp() - make_interval(secs => %(elapsed)s))),
       updated_at = now()"""
_RESERVE: Final = "last_seq = last_seq + jsonb_array_length(%(events)s),\n       "
_RETURNING: Final = """
    RETURNING id, user_id, type, status, attempts, callback_url, last_seq
), logged AS (
    INSERT INTO analysis_events (job_id, seq, kind, data)
    SELECT c.id, c.last_seq - jsonb_array_length(%(events)s) + e.n::integer,
           e.value ->> 'kind', COALESCE(e.value -> 'data', '{}'::jsonb)
      FROM changed c, jsonb_array_elements(%(events)s) WITH ORDINALITY AS e(value, n)
)
SELECT id, user_id, type, status, attempts, callback_url FROM changed"""

_LOAD: Final = """
SELECT a.id, a.user_id, a.type, a.status, a.priority, a.sensitivity, a.options, a.agent_team,
       a.attempts, a.abort_requested_at, a.callback_url, a.created_at, a.queued_at,
       a.started_at, i.data
  FROM analyses a LEFT JOIN analysis_inputs i ON i.job_id = a.id
 WHERE a.id = %s"""

_WATCH: Final = "SELECT status, attempts, abort_requested_at FROM analyses WHERE id = %s"

_RUNNING: Final = (
    """
WITH changed AS (
UPDATE analyses
   SET status = 'running',
       progress = COALESCE(%(progress)s, CASE WHEN %(started)s THEN progress ELSE 0 END),
       current_step = CASE WHEN %(started)s THEN COALESCE(%(step)s, current_step)
                           ELSE %(step)s END,
       """
    + _RESERVE
    + _CLAIM
    + _FENCE
    + _RETURNING
)

_COMPLETE: Final = (
    """
WITH changed AS (
UPDATE analyses
   SET status = 'completed', progress = 100, current_step = %(step)s,
       result = %(result)s, report_markdown = %(report)s, provider = %(provider)s,
       degraded = %(degraded)s, tokens_prompt = %(prompt)s, tokens_completion = %(completion)s,
       cost_eur = %(cost)s, error_code = NULL, error_message = NULL,
       finished_at = clock_timestamp(),
       """
    + _RESERVE
    + _CLAIM
    + _FENCE
    + _RETURNING
)

_FAIL: Final = (
    """
WITH changed AS (
UPDATE analyses
   SET status = 'failed', current_step = %(step)s, error_code = %(code)s,
       error_message = %(message)s, finished_at = clock_timestamp(),
       """
    + _RESERVE
    + _CLAIM
    + _FENCE
    + _RETURNING
)

_CANCEL: Final = (
    """
WITH changed AS (
UPDATE analyses
   SET status = 'cancelled', current_step = %(step)s, error_code = 'cancelled',
       error_message = %(message)s, finished_at = clock_timestamp(),
       """
    + _RESERVE
    + _CLAIM
    + _FENCE
    + _RETURNING
)

_REQUEUE: Final = (
    """
WITH changed AS (
UPDATE analyses
   SET status = 'queued', current_step = %(step)s,
       """
    + _RESERVE
    + _CLAIM
    + _FENCE
    + _RETURNING
)


async def load(conn: psycopg.AsyncConnection[Any], job_id: JobId) -> Row | None:
    """The analysis with its input data, as an attempt needs it."""
    cursor = await conn.execute(_LOAD, (job_id,))
    return _dict(cursor, await cursor.fetchone())


async def watch(conn: psycopg.AsyncConnection[Any], job_id: JobId) -> Row | None:
    """The few columns a running attempt polls: status, owner attempt, abort request."""
    cursor = await conn.execute(_WATCH, (job_id,))
    return _dict(cursor, await cursor.fetchone())


async def mark_running(
    conn: psycopg.AsyncConnection[Any],
    job_id: JobId,
    fence: Fence,
    *,
    elapsed_s: float,
    progress: int | None = None,
    step: str | None = None,
    events: Sequence[Event] = (),
) -> Row | None:
    """Record the start of the attempt and/or its latest progress; None if not the owner."""
    params = fence.params(job_id, elapsed_s, events) | {"progress": progress, "step": step}
    return await _one(conn, _RUNNING, params)


@dataclass(frozen=True, slots=True)
class Completion:
    result: Mapping[str, Any]
    report_markdown: str
    provider: str
    degraded: bool
    prompt_tokens: int
    completion_tokens: int
    cost_eur: float
    step: str


async def complete(
    conn: psycopg.AsyncConnection[Any],
    job_id: JobId,
    fence: Fence,
    done: Completion,
    *,
    elapsed_s: float,
    events: Sequence[Event] = (),
) -> Row | None:
    params = fence.params(job_id, elapsed_s, events) | {
        "result": Jsonb(dict(done.result)),
        "report": done.report_markdown,
        "provider": done.provider,
        "degraded": done.degraded,
        "prompt": done.prompt_tokens,
        "completion": done.completion_tokens,
        "cost": done.cost_eur,
        "step": done.step,
    }
    return await _one(conn, _COMPLETE, params)


async def fail(
    conn: psycopg.AsyncConnection[Any],
    job_id: JobId,
    fence: Fence,
    *,
    code: str,
    message: str,
    step: str,
    elapsed_s: float,
    events: Sequence[Event] = (),
) -> Row | None:
    params = fence.params(job_id, elapsed_s, events) | {
        "code": code,
        "message": message,
        "step": step,
    }
    return await _one(conn, _FAIL, params)


async def cancel(
    conn: psycopg.AsyncConnection[Any],
    job_id: JobId,
    fence: Fence,
    *,
    message: str,
    step: str,
    elapsed_s: float,
    events: Sequence[Event] = (),
) -> Row | None:
    params = fence.params(job_id, elapsed_s, events) | {"message": message, "step": step}
    return await _one(conn, _CANCEL, params)


async def requeue(
    conn: psycopg.AsyncConnection[Any],
    job_id: JobId,
    fence: Fence,
    *,
    step: str,
    elapsed_s: float,
    events: Sequence[Event] = (),
) -> Row | None:
    """Back to ``queued`` between attempts (a retry, or a hand-back on shutdown)."""
    params = fence.params(job_id, elapsed_s, events) | {"step": step}
    return await _one(conn, _REQUEUE, params)


# --------------------------------------------------------------------------- recovery

_STALLED: Final = """
SELECT j.id, j.task_name, j.queue_name, j.priority, j.lock, j.args, j.worker_id,
       j.abort_requested
  FROM procrastinate_jobs j
  LEFT JOIN procrastinate_workers w ON w.id = j.worker_id
 WHERE j.status = 'doing'
   AND (w.id IS NULL
        OR w.last_heartbeat < clock_timestamp() - make_interval(secs => %(stalled_after)s))
 ORDER BY j.id
 LIMIT %(limit)s
   FOR UPDATE OF j SKIP LOCKED"""

_LOCK_ANALYSIS: Final = """
SELECT id, status, attempts, abort_requested_at, callback_url, user_id, type
  FROM analyses WHERE id = %s FOR UPDATE"""

_FINISH_JOB: Final = "SELECT procrastinate_finish_job_v1(%s, %s::procrastinate_job_status, false)"

_RECOVER_ANALYSIS: Final = """
UPDATE analyses
   SET status = %(status)s, current_step = %(step)s, error_code = %(code)s,
       error_message = %(message)s,
       finished_at = CASE WHEN %(status)s IN ('queued', 'running') THEN NULL ELSE now() END,
       updated_at = now()
 WHERE id = %(id)s AND status IN ('queued', 'running')
RETURNING id, user_id, type, status, attempts, callback_url"""


_ORPHANS: Final = """
SELECT a.id, a.status, a.attempts, a.priority, a.abort_requested_at, a.callback_url,
       a.user_id, a.type,
       (SELECT count(*) FROM procrastinate_jobs q
         WHERE q.task_name = %(task)s AND q.args ->> 'job_id' = a.id::text) AS queue_jobs
  FROM analyses a
 WHERE a.status IN ('queued', 'running')
   AND a.updated_at < clock_timestamp() - make_interval(secs => %(grace)s)
   AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                    WHERE j.id = a.procrastinate_job_id AND j.status IN ('todo', 'doing'))
 ORDER BY a.updated_at
 LIMIT %(limit)s
   FOR UPDATE OF a SKIP LOCKED"""


async def orphans(
    conn: psycopg.AsyncConnection[Any], *, task_name: str, grace_s: float, limit: int = 100
) -> list[Row]:
    """Waiting or running analyses without a live queue job (locked until commit).

    Normally there are none: every path that ends a queue job also ends or requeues its
    analysis. This is the safety net for the paths that failed half-way.
    """
    params = {"task": task_name, "grace": grace_s, "limit": limit}
    cursor = await conn.execute(_ORPHANS, params)
    return _all(cursor, await cursor.fetchall())


async def stalled_jobs(
    conn: psycopg.AsyncConnection[Any], *, stalled_after_s: float, limit: int = 100
) -> list[Row]:
    """Running procrastinate jobs whose worker is gone or silent; locked until commit."""
    cursor = await conn.execute(_STALLED, {"stalled_after": stalled_after_s, "limit": limit})
    return _all(cursor, await cursor.fetchall())


async def lock_analysis(conn: psycopg.AsyncConnection[Any], job_id: JobId) -> Row | None:
    cursor = await conn.execute(_LOCK_ANALYSIS, (job_id,))
    return _dict(cursor, await cursor.fetchone())


async def finish_queue_job(
    conn: psycopg.AsyncConnection[Any], queue_job_id: int, status: str
) -> None:
    """End a procrastinate job that its worker can no longer end (succeeded/failed/aborted)."""
    await conn.execute(_FINISH_JOB, (queue_job_id, status))


async def settle_analysis(
    conn: psycopg.AsyncConnection[Any],
    job_id: JobId,
    *,
    status: str,
    step: str,
    code: str | None = None,
    message: str | None = None,
) -> Row | None:
    """Recovery's own state change, on a row locked by :func:`lock_analysis`."""
    params = {"id": job_id, "status": status, "step": step, "code": code, "message": message}
    return await _one(conn, _RECOVER_ANALYSIS, params)


async def set_queue_job_id(
    conn: psycopg.AsyncConnection[Any], job_id: JobId, queue_job_id: int
) -> None:
    await conn.execute(
        "UPDATE analyses SET procrastinate_job_id = %s WHERE id = %s", (queue_job_id, job_id)
    )


# --------------------------------------------------------------------------- fairness

_REBALANCE: Final = """
WITH waiting AS (
    SELECT j.id, j.priority,
           a.queued_at < clock_timestamp() - make_interval(secs => %(starved_after)s) AS starved,
           (%(levels)s::jsonb ->> a.priority)::integer AS level,
           row_number() OVER (PARTITION BY a.user_id, a.priority
                              ORDER BY a.queued_at, j.id) AS rank
      FROM procrastinate_jobs j
      JOIN analyses a ON a.id = (j.args ->> 'job_id')::uuid
     WHERE j.status = 'todo' AND j.task_name = %(task)s AND a.status = 'queued'
), target AS (
    SELECT id, starved,
           CASE WHEN starved THEN %(starved_priority)s
                ELSE level - LEAST(%(max_demotion)s, (rank - 1) / %(per_user)s)::integer
           END AS priority
      FROM waiting
)
UPDATE procrastinate_jobs j
   SET priority = t.priority
  FROM target t
 WHERE j.id = t.id AND j.status = 'todo' AND j.priority <> t.priority
RETURNING j.id, t.starved"""


@dataclass(frozen=True, slots=True)
class Rebalanced:
    promoted: int
    reordered: int


async def rebalance(
    conn: psycopg.AsyncConnection[Any],
    *,
    task_name: str,
    levels: Mapping[str, int],
    starved_after_s: float,
    starved_priority: int,
    per_user: int,
    max_demotion: int,
) -> Rebalanced:
    """Set the queue priority of every waiting analysis from its level, age and owner.

    Within a priority level each user's waiting jobs are served in tiers of ``per_user``:
    the first tier keeps the level's priority, each later tier one point less (at most
    ``max_demotion``), so one user's burst interleaves with everyone else's jobs instead of
    going first as a block. A job that has waited longer than ``starved_after_s`` jumps to
    ``starved_priority`` (above every level) and runs next, oldest first.
    """
    params = {
        "task": task_name,
        "levels": Jsonb(dict(levels)),
        "starved_after": starved_after_s,
        "starved_priority": starved_priority,
        "per_user": max(1, per_user),
        "max_demotion": max_demotion,
    }
    cursor = await conn.execute(_REBALANCE, params)
    rows = await cursor.fetchall()
    promoted = sum(1 for row in rows if _get(cursor, row, "starved"))
    return Rebalanced(promoted=promoted, reordered=len(rows) - promoted)


# --------------------------------------------------------------------------- retention

_PRUNE_QUEUE_JOBS: Final = """
DELETE FROM procrastinate_jobs
 WHERE id IN (
    SELECT j.id FROM procrastinate_jobs j
     WHERE j.status IN ('succeeded', 'failed', 'cancelled', 'aborted')
       AND NOT EXISTS (SELECT 1 FROM procrastinate_events e
                        WHERE e.job_id = j.id
                          AND e.at >= clock_timestamp() - make_interval(days => %(days)s))
     LIMIT %(limit)s)"""

_PRUNE_ANALYSES: Final = """
DELETE FROM analyses
 WHERE id IN (
    SELECT id FROM analyses
     WHERE finished_at < clock_timestamp() - make_interval(days => %(days)s)
     LIMIT %(limit)s)"""


async def prune_queue_jobs(
    conn: psycopg.AsyncConnection[Any], *, older_than_days: int, limit: int = 5000
) -> int:
    """Delete finished procrastinate jobs (and their events) idle for ``older_than_days``."""
    cursor = await conn.execute(_PRUNE_QUEUE_JOBS, {"days": older_than_days, "limit": limit})
    return cursor.rowcount


async def prune_analyses(
    conn: psycopg.AsyncConnection[Any], *, older_than_days: int, limit: int = 5000
) -> int:
    """Delete analyses (results, inputs, events) finished more than ``older_than_days`` ago."""
    cursor = await conn.execute(_PRUNE_ANALYSES, {"days": older_than_days, "limit": limit})
    return cursor.rowcount


# --------------------------------------------------------------------------- operators

_LIST: Final = """
SELECT a.id, a.type, a.status, a.priority, a.user_id, a.progress, a.current_step, a.attempts,
       a.error_code, a.created_at, a.started_at, a.finished_at,
       j.id AS queue_job_id, j.status::text AS queue_status, j.priority AS queue_priority,
       j.worker_id
  FROM analyses a
  LEFT JOIN procrastinate_jobs j ON j.id = a.procrastinate_job_id
 WHERE (%(status)s::text IS NULL OR a.status = %(status)s)
   AND (%(type)s::text IS NULL OR a.type = %(type)s)
   AND (%(user)s::text IS NULL OR a.user_id = %(user)s)
 ORDER BY a.created_at DESC, a.id DESC
 LIMIT %(limit)s"""

_SHOW: Final = """
SELECT a.id, a.type, a.status, a.priority, a.sensitivity, a.user_id, a.user_email,
       a.agent_team, a.progress, a.current_step, a.attempts, a.last_seq, a.error_code,
       a.error_message, a.abort_requested_at, a.provider, a.degraded, a.tokens_prompt,
       a.tokens_completion, a.cost_eur, a.callback_url, a.created_at, a.queued_at,
       a.started_at, a.finished_at, a.procrastinate_job_id AS queue_job_id,
       j.status::text AS queue_status, j.priority AS queue_priority, j.attempts AS queue_attempts,
       j.worker_id, j.scheduled_at
  FROM analyses a
  LEFT JOIN procrastinate_jobs j ON j.id = a.procrastinate_job_id
 WHERE a.id = %s"""


async def list_jobs(
    conn: psycopg.AsyncConnection[Any],
    *,
    status: str | None = None,
    type: str | None = None,
    user_id: str | None = None,
    limit: int = 50,
) -> list[Row]:
    """Newest first, for ``bi-engine jobs list``."""
    params = {"status": status, "type": type, "user": user_id, "limit": limit}
    cursor = await conn.execute(_LIST, params)
    return _all(cursor, await cursor.fetchall())


async def show(conn: psycopg.AsyncConnection[Any], job_id: JobId) -> Row | None:
    cursor = await conn.execute(_SHOW, (job_id,))
    return _dict(cursor, await cursor.fetchone())


# --------------------------------------------------------------------------- helpers


async def _one(conn: psycopg.AsyncConnection[Any], query: LiteralString, params: Any) -> Row | None:
    cursor = await conn.execute(query, params)
    return _dict(cursor, await cursor.fetchone())


def _dict(cursor: psycopg.AsyncCursor[Any], row: Any) -> Row | None:
    if row is None:
        return None
    if isinstance(row, dict):
        return row
    names = [column.name for column in cursor.description or ()]
    return dict(zip(names, row, strict=True))


def _all(cursor: psycopg.AsyncCursor[Any], rows: list[Any]) -> list[Row]:
    return [row for row in (_dict(cursor, r) for r in rows) if row is not None]


def _get(cursor: psycopg.AsyncCursor[Any], row: Any, name: str) -> Any:
    row_dict = _dict(cursor, row)
    return None if row_dict is None else row_dict[name]
