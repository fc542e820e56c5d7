"""The ``analyses`` table as the API and operators use it: submit, read, list, cancel, retry.

Workers move a job through running/completed/failed with their own statements; here live
the statements of the front door. Idempotency keys are claimed in the same statement that
inserts the job, so concurrent duplicates can never create two jobs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, LiteralString

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from bi_engine.domain import jobs

Row = dict[str, Any]
Connection = psycopg.AsyncConnection[Any]

IDEMPOTENCY_WINDOW_S: Final = 24 * 3600
WORKER_FRESH_S: Final = 30.0
"""A procrastinate worker counts as alive while its heartbeat is younger than this."""
RECENT_RUNS: Final = 50
"""Completed jobs averaged for the run-time estimate."""

COLUMNS: Final = (
    "id, user_id, user_email, type, agent_team, status, priority, sensitivity, callback_url,"
    " progress, current_step, attempts, error_code, error_message, abort_requested_at,"
    " procrastinate_job_id, last_seq, created_at, queued_at, started_at, finished_at"
)
_COLUMNS_A: Final = ", ".join(f"a.{c.strip()}" for c in COLUMNS.split(","))

# Capacity of the live workers: the same subqueries serve submissions and status reads.
_CAPACITY: Final = f"""
    (SELECT count(*) FROM procrastinate_workers
      WHERE last_heartbeat > now() - make_interval(secs => {WORKER_FRESH_S})) AS workers,
    (SELECT count(*) FROM analyses WHERE status = 'running') AS running,
    (SELECT avg(EXTRACT(EPOCH FROM (r.finished_at - r.started_at)))::float8
       FROM (SELECT finished_at, started_at FROM analyses
              WHERE status = 'completed' AND started_at IS NOT NULL
              ORDER BY finished_at DESC LIMIT {RECENT_RUNS}) r) AS avg_run_s
"""

# Queued jobs that start before (priority, queued_at, id): procrastinate runs higher priority
# first, then older jobs.
_AHEAD: Final = """
    (SELECT count(*) FROM analyses q
      WHERE q.status = 'queued' AND q.id <> %(id)s
        AND (q.priority = ANY(%(higher)s::text[])
             OR (q.priority = %(priority)s
                 AND (q.queued_at < %(queued_at)s
                      OR (q.queued_at = %(queued_at)s AND q.id < %(id)s))))) AS ahead
"""

_AHEAD_NOW: Final = _AHEAD.replace("%(queued_at)s", "now()")

_INSERT: Final = f"""
WITH new AS (
    INSERT INTO analyses (id, user_id, user_email, type, agent_team, priority, sensitivity,
                          options, callback_url, procrastinate_job_id)
    VALUES (%(id)s, %(user_id)s, %(user_email)s, %(type)s, %(agent_team)s, %(priority)s,
            %(sensitivity)s, %(options)s, %(callback_url)s, %(procrastinate_job_id)s)
    RETURNING {COLUMNS}
), input AS (
    INSERT INTO analysis_inputs (job_id, data) SELECT id, %(data)s FROM new
), claim AS (
    INSERT INTO idempotency_keys (user_id, key, job_id)
    SELECT user_id, %(key)s, id FROM new WHERE %(key)s::text IS NOT NULL
    ON CONFLICT (user_id, key) DO UPDATE
        SET job_id = EXCLUDED.job_id, created_at = now()
        WHERE idempotency_keys.created_at
              < now() - make_interval(secs => {IDEMPOTENCY_WINDOW_S})
    RETURNING job_id
)
SELECT new.*,
       (%(key)s::text IS NULL OR EXISTS (SELECT 1 FROM claim)) AS claimed,
       {_AHEAD_NOW},
       {_CAPACITY}
  FROM new
"""

_BY_KEY: Final = f"""
SELECT {_COLUMNS_A} FROM idempotency_keys k JOIN analyses a ON a.id = k.job_id
 WHERE k.user_id = %s AND k.key = %s
   AND k.created_at >= now() - make_interval(secs => {IDEMPOTENCY_WINDOW_S})
"""

_SNAPSHOT: Final = f"SELECT {_AHEAD}, {_CAPACITY}"


@dataclass(frozen=True, slots=True)
class NewAnalysis:
    """Everything a submission writes; ``data`` goes to ``analysis_inputs``."""

    id: uuid.UUID
    user_id: str
    user_email: str | None
    type: str
    agent_team: str | None
    priority: str
    sensitivity: str
    options: dict[str, Any]
    callback_url: str | None
    data: dict[str, Any]
    procrastinate_job_id: int
    idempotency_key: str | None = None
    data_json: bytes | None = None
    """``data`` already encoded as JSON (saves encoding a large input twice)."""


@dataclass(frozen=True, slots=True)
class Inserted:
    """The new row, whether its idempotency key was free, and where it stands in the queue."""

    row: Row
    claimed: bool
    snapshot: jobs.QueueSnapshot


def _encoded(data_json: bytes) -> Any:
    return lambda _value: data_json


def _higher(priority: str) -> list[str]:
    return list(jobs.HIGHER_PRIORITIES[priority])


def _snapshot(values: Row) -> jobs.QueueSnapshot:
    return jobs.QueueSnapshot(
        position=int(values.pop("ahead")) + 1,
        workers=int(values.pop("workers")),
        running=int(values.pop("running")),
        avg_run_s=values.pop("avg_run_s"),
    )


async def _one(conn: Connection, query: LiteralString, params: Any) -> Row | None:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchone()


@dataclass(frozen=True, slots=True)
class PendingInsert:
    """An insert sent (in pipeline mode: queued) whose result is read later."""

    cursor: psycopg.AsyncCursor[Row]

    async def result(self) -> Inserted:
        try:
            row = await self.cursor.fetchone()
        finally:
            await self.cursor.close()
        assert row is not None
        claimed = bool(row.pop("claimed"))
        return Inserted(row=row, claimed=claimed, snapshot=_snapshot(row))


async def insert(conn: Connection, new: NewAnalysis, *, dumps: Any = None) -> PendingInsert:
    """Insert the job, its input and its idempotency key (in the caller's transaction).

    Returns at once; ``await pending.result()`` reads the outcome, so in pipeline mode the
    next statements travel in the same round trip. ``claimed`` is False when the same
    user's key is held by a job younger than 24 h: the caller must then roll back and
    return that job instead.
    """
    params = {
        "id": new.id,
        "user_id": new.user_id,
        "user_email": new.user_email,
        "type": new.type,
        "agent_team": new.agent_team,
        "priority": new.priority,
        "sensitivity": new.sensitivity,
        "options": Jsonb(new.options, dumps=dumps),
        "callback_url": new.callback_url,
        "procrastinate_job_id": new.procrastinate_job_id,
        "data": Jsonb(new.data, dumps=_encoded(new.data_json) if new.data_json else dumps),
        "key": new.idempotency_key,
        "higher": _higher(new.priority),
    }
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(_INSERT, params)
    return PendingInsert(cursor)


_INSERT_MANY: Final = f"""
WITH rows AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s) AS r(
        id uuid, user_id text, user_email text, type text, agent_team text, priority text,
        sensitivity text, options jsonb, callback_url text, procrastinate_job_id bigint,
        data jsonb)
), new AS (
    INSERT INTO analyses (id, user_id, user_email, type, agent_team, priority, sensitivity,
                          options, callback_url, procrastinate_job_id)
    SELECT id, user_id, user_email, type, agent_team, priority, sensitivity, options,
           callback_url, procrastinate_job_id
      FROM rows
    RETURNING {COLUMNS}
), input AS (
    INSERT INTO analysis_inputs (job_id, data) SELECT id, data FROM rows
)
SELECT * FROM new
"""

_QUEUED_COUNTS: Final = f"""
SELECT (SELECT count(*) FROM analyses WHERE status = 'queued' AND priority = 'high') AS high,
       (SELECT count(*) FROM analyses WHERE status = 'queued' AND priority = 'normal') AS normal,
       (SELECT count(*) FROM analyses WHERE status = 'queued' AND priority = 'low') AS low,
       {_CAPACITY}
"""

_FIRST_EVENTS: Final = "SELECT append_events(j, %s) FROM unnest(%s::uuid[]) AS j"


def _row_json(new: NewAnalysis, dumps: Any) -> bytes:
    """One element of the rows array, splicing in the input JSON encoded at validation."""
    head = {
        "id": str(new.id),
        "user_id": new.user_id,
        "user_email": new.user_email,
        "type": new.type,
        "agent_team": new.agent_team,
        "priority": new.priority,
        "sensitivity": new.sensitivity,
        "options": new.options,
        "callback_url": new.callback_url,
        "procrastinate_job_id": new.procrastinate_job_id,
    }
    data = new.data_json if new.data_json is not None else _as_bytes(dumps(new.data))
    return _as_bytes(dumps(head))[:-1] + b',"data":' + data + b"}"


def _as_bytes(text: str | bytes) -> bytes:
    return text.encode() if isinstance(text, str) else text


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """A multi-row insert sent (in pipeline mode: queued), plus the queue as it was before."""

    counts: psycopg.AsyncCursor[Row]
    inserted: psycopg.AsyncCursor[Row]

    async def result(self) -> tuple[dict[uuid.UUID, Row], dict[str, int], jobs.QueueSnapshot]:
        """Rows by id, queued jobs per priority before the batch, and worker capacity."""
        try:
            before = await self.counts.fetchone()
            rows = await self.inserted.fetchall()
        finally:
            await self.counts.close()
            await self.inserted.close()
        assert before is not None
        queued = {p: int(before.pop(p)) for p in ("high", "normal", "low")}
        capacity = jobs.QueueSnapshot(
            position=0,
            workers=int(before["workers"]),
            running=int(before["running"]),
            avg_run_s=before["avg_run_s"],
        )
        return {row["id"]: row for row in rows}, queued, capacity


async def insert_many(
    conn: Connection, news: Sequence[NewAnalysis], *, dumps: Any = None
) -> PendingBatch:
    """Insert several jobs and their inputs in one statement (no idempotency keys here).

    Reads the queued counts first, in the same transaction, so positions can be computed
    for every job of the batch.
    """
    encode = dumps or json.dumps
    rows = b"[" + b",".join(_row_json(new, encode) for new in news) + b"]"
    counts = conn.cursor(row_factory=dict_row)
    await counts.execute(_QUEUED_COUNTS)
    inserted = conn.cursor(row_factory=dict_row)
    await inserted.execute(_INSERT_MANY, {"rows": Jsonb([], dumps=lambda _value: rows)})
    return PendingBatch(counts=counts, inserted=inserted)


async def append_queued_events(conn: Connection, job_ids: Sequence[uuid.UUID]) -> None:
    """The first ``status`` event of each new job, through the same ``append_events``."""
    event = Jsonb([{"kind": "status", "data": {"status": "queued"}}])
    await conn.execute(_FIRST_EVENTS, (event, list(job_ids)))


async def by_idempotency_key(conn: Connection, user_id: str, key: str) -> Row | None:
    """The job that holds this user's key, if the key is younger than 24 h."""
    return await _one(conn, _BY_KEY, (user_id, key))


async def queue_snapshot(conn: Connection, row: Row) -> jobs.QueueSnapshot:
    """Position of a queued job and the capacity of the live workers."""
    params = {
        "id": row["id"],
        "priority": row["priority"],
        "queued_at": row["queued_at"],
        "higher": _higher(row["priority"]),
    }
    values = await _one(conn, _SNAPSHOT, params)
    assert values is not None
    return _snapshot(values)


def _owner_clause(user_id: str | None) -> LiteralString:
    return "" if user_id is None else " AND user_id = %(user_id)s"


async def get(
    conn: Connection, job_id: uuid.UUID, *, user_id: str | None = None, lock: bool = False
) -> Row | None:
    """One job (not its input or result); ``user_id`` restricts to that owner's jobs."""
    query: LiteralString = f"SELECT {COLUMNS} FROM analyses WHERE id = %(id)s"
    query += _owner_clause(user_id)
    if lock:
        query += " FOR UPDATE"
    return await _one(conn, query, {"id": job_id, "user_id": user_id})


async def get_result(
    conn: Connection, job_id: uuid.UUID, *, user_id: str | None = None
) -> Row | None:
    """A job with its result document and report."""
    query: LiteralString = (
        f"SELECT {COLUMNS}, result, report_markdown FROM analyses WHERE id = %(id)s"
    )
    query += _owner_clause(user_id)
    return await _one(conn, query, {"id": job_id, "user_id": user_id})


async def status_of(conn: Connection, job_id: uuid.UUID) -> str | None:
    row = await _one(conn, "SELECT status FROM analyses WHERE id = %s", (job_id,))
    return None if row is None else str(row["status"])


async def list_page(
    conn: Connection,
    *,
    user_id: str | None,
    statuses: Sequence[str] = (),
    types: Sequence[str] = (),
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
) -> list[Row]:
    """Newest first, keyset-paginated by ``(created_at, id)``."""
    query: LiteralString = f"SELECT {COLUMNS} FROM analyses WHERE true"
    query += _owner_clause(user_id)
    if statuses:
        query += " AND status = ANY(%(statuses)s::text[])"
    if types:
        query += " AND type = ANY(%(types)s::text[])"
    if after is not None:
        query += " AND (created_at, id) < (%(after_at)s, %(after_id)s)"
    query += " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
    params = {
        "user_id": user_id,
        "statuses": list(statuses),
        "types": list(types),
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": limit,
    }
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchall()


_CANCEL: Final = f"""
UPDATE analyses SET status = 'cancelled', finished_at = now(), updated_at = now(),
       abort_requested_at = COALESCE(abort_requested_at, now())
 WHERE id = %s AND status = 'queued'
RETURNING {COLUMNS}
"""

_ABORT: Final = f"""
UPDATE analyses SET abort_requested_at = COALESCE(abort_requested_at, now()), updated_at = now()
 WHERE id = %s AND status IN ('queued', 'running')
RETURNING {COLUMNS}
"""

_REQUEUE: Final = f"""
UPDATE analyses
   SET status = 'queued', procrastinate_job_id = %s, queued_at = now(), started_at = NULL,
       finished_at = NULL, error_code = NULL, error_message = NULL, abort_requested_at = NULL,
       progress = 0, current_step = NULL, result = NULL, report_markdown = NULL,
       updated_at = now()
 WHERE id = %s AND status IN ('failed', 'cancelled')
RETURNING {COLUMNS}
"""


async def mark_cancelled(conn: Connection, job_id: uuid.UUID) -> Row | None:
    """queued -> cancelled (None when it is no longer queued)."""
    return await _one(conn, _CANCEL, (job_id,))


async def mark_abort_requested(conn: Connection, job_id: uuid.UUID) -> Row | None:
    """Ask the worker running the job to stop at its next step."""
    return await _one(conn, _ABORT, (job_id,))


async def requeue(conn: Connection, job_id: uuid.UUID, procrastinate_job_id: int) -> Row | None:
    """failed/cancelled -> queued again, with a fresh procrastinate job."""
    return await _one(conn, _REQUEUE, (procrastinate_job_id, job_id))
