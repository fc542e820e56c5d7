"""Cancel and retry: the same use cases for the HTTP API and for operators' commands.

Each runs in one transaction that locks the job row, so it cannot interleave with a worker
moving the same job (workers update the row too, and wait for the lock).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

import procrastinate
import psycopg
import structlog

from bi_engine import submit
from bi_engine.auth.principal import Principal
from bi_engine.db import analyses, audit, events
from bi_engine.domain import jobs
from bi_engine.webhooks import enqueue

Row = dict[str, Any]
Connection = psycopg.AsyncConnection[Any]

log = structlog.stdlib.get_logger("bi_engine.control")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user (only their own jobs unless admin) or an operator (``principal`` None)."""

    principal: Principal | None = None
    ip: str | None = None
    request_id: str | None = None

    @property
    def owner_filter(self) -> str | None:
        """The user_id jobs must belong to, or None for admins and operators."""
        if self.principal is None or self.principal.is_admin:
            return None
        return self.principal.user_id

    @property
    def user_id(self) -> str | None:
        return self.principal.user_id if self.principal else None


@dataclass(frozen=True, slots=True)
class Cancelled:
    """``cancelled``: the queued job ended at once; ``abort_requested``: its worker will stop it."""

    row: Row
    outcome: Literal["cancelled", "abort_requested"]


async def _locked(conn: Connection, job_id: uuid.UUID, actor: Actor) -> Row:
    row = await analyses.get(conn, job_id, user_id=actor.owner_filter, lock=True)
    if row is None:
        raise jobs.JobNotFound
    return row


async def cancel(
    conn: Connection, app: procrastinate.App, job_id: uuid.UUID, actor: Actor
) -> Cancelled:
    """Cancel a job: queued -> ``cancelled`` at once; running -> abort requested.

    A queued job is cancelled in one transaction with its procrastinate job, a terminal
    ``cancelled`` event, ``finished_at`` and its callback delivery (if it has a
    callback_url). A running job gets ``abort_requested_at`` and procrastinate's abort
    flag; its worker ends it ``cancelled`` at the next step. Raises
    :class:`~bi_engine.domain.jobs.JobNotFound` (also for someone else's job) and
    :class:`~bi_engine.domain.jobs.JobStateConflict` when it already ended.
    ``conn`` must be in autocommit mode; this function owns the transaction.
    """
    async with conn.transaction():
        row = await _locked(conn, job_id, actor)
        if row["status"] == "queued" and await _cancel_queued_job(conn, app, row):
            ended = await analyses.mark_cancelled(conn, job_id)
            assert ended is not None
            await events.append(conn, job_id, [_cancelled_event()])
            await enqueue.on_terminal(app, conn, job_id, "cancelled", ended["callback_url"])
            await _audit(conn, actor, "analysis_cancelled", ended, "cancelled")
            return Cancelled(ended, "cancelled")
        if row["status"] in ("queued", "running"):
            return Cancelled(await _request_abort(conn, app, row, actor), "abort_requested")
        raise jobs.JobStateConflict(
            f"The job already ended {row['status']}.", details={"status": row["status"]}
        )


def _cancelled_event() -> dict[str, Any]:
    return {"kind": "cancelled", "data": {"status": "cancelled", "reason": "cancelled_on_request"}}


async def _cancel_queued_job(conn: Connection, app: procrastinate.App, row: Row) -> bool:
    """True when procrastinate had not handed the job to a worker yet."""
    procrastinate_id = row["procrastinate_job_id"]
    if procrastinate_id is None:
        return True
    cancelled: bool = await app.job_manager.cancel_job_by_id_async(
        procrastinate_id, abort=False, connection=conn
    )
    return cancelled


async def _request_abort(conn: Connection, app: procrastinate.App, row: Row, actor: Actor) -> Row:
    updated = await analyses.mark_abort_requested(conn, row["id"])
    assert updated is not None
    if row["procrastinate_job_id"] is not None:
        await app.job_manager.cancel_job_by_id_async(
            row["procrastinate_job_id"], abort=True, connection=conn
        )
    await _audit(conn, actor, "analysis_cancelled", updated, "abort_requested")
    return updated


async def retry(conn: Connection, app: procrastinate.App, job_id: uuid.UUID, actor: Actor) -> Row:
    """Queue a failed or cancelled job again; returns the queued row.

    One transaction: a new procrastinate job (same priority), the row back to ``queued``
    with its error cleared, ``queued_at`` now and ``finished_at`` null, and a ``status``
    event ``{"status": "queued", "retry": true}``. Raises
    :class:`~bi_engine.domain.jobs.JobNotFound` or
    :class:`~bi_engine.domain.jobs.JobStateConflict` (409: queued, running or completed).
    """
    async with conn.transaction():
        row = await _locked(conn, job_id, actor)
        if row["status"] not in ("failed", "cancelled"):
            raise jobs.JobStateConflict(
                f"Only failed or cancelled jobs can be retried; this one is {row['status']}.",
                details={"status": row["status"]},
            )
        procrastinate_id = await submit.defer_run(app, conn, job_id, row["priority"])
        queued = await analyses.requeue(conn, job_id, procrastinate_id)
        assert queued is not None
        await events.append(
            conn, job_id, [{"kind": "status", "data": {"status": "queued", "retry": True}}]
        )
        await _audit(conn, actor, "analysis_retried", queued, "queued")
        return queued


async def _audit(conn: Connection, actor: Actor, action: str, row: Row, result: str) -> None:
    log.info(action, job_id=str(row["id"]), result=result, user_id=actor.user_id)
    await audit.record(
        conn,
        user_id=actor.user_id,
        action=action,
        result=result,
        analysis_type=row["type"],
        job_id=row["id"],
        ip=actor.ip,
        request_id=actor.request_id,
        details={"operator": actor.principal is None},
    )
