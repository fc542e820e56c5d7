"""The submit use case: one transaction writes the job, its input, its idempotency key, the
queued procrastinate job, the first ``status`` event and the audit row — never one without
the others. :func:`create_job` writes one job; :func:`create_jobs` several in one
transaction (the API's group commit).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

import orjson
import procrastinate
import psycopg

from bi_engine import constants, queue
from bi_engine.auth import principal as auth
from bi_engine.auth import stream
from bi_engine.db import analyses, audit, events
from bi_engine.domain import jobs
from bi_engine.domain.submission import AnalysisRequest
from bi_engine.settings import Settings

Row = dict[str, Any]
MAX_KEY_RACES: Final = 3


@dataclass(frozen=True, slots=True)
class Caller:
    """Who submits, and the request facts the audit log keeps."""

    principal: auth.Principal
    ip: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submission's outcome: the job row, and whether it is new or an idempotent replay."""

    row: Row
    created: bool
    position: int | None
    estimated_start: datetime | None
    stream_token: str

    @property
    def job_id(self) -> uuid.UUID:
        job_id: uuid.UUID = self.row["id"]
        return job_id

    def document(self) -> dict[str, Any]:
        """The 202 job document of CONTRACT section 5."""
        return jobs.accepted_document(
            self.row,
            stream_token=self.stream_token,
            position=self.position,
            estimated_start=self.estimated_start,
        )


class _KeyTaken(Exception):
    """The idempotency key belongs to a younger job: roll back, answer with that job."""


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def defer_run(
    app: procrastinate.App, conn: psycopg.AsyncConnection[Any], job_id: uuid.UUID, priority: str
) -> int:
    """Queue ``bi.run_analysis(job_id=...)`` by name on ``conn`` (joins its transaction)."""
    deferrer = app.configure_task(
        constants.TASK_RUN_ANALYSIS,
        connection=conn,
        queue=constants.QUEUE_ANALYSES,
        priority=queue.procrastinate_priority(priority),
    )
    procrastinate_id: int = await deferrer.defer_async(job_id=str(job_id))
    return procrastinate_id


async def create_job(
    conn: psycopg.AsyncConnection[Any],
    app: procrastinate.App,
    settings: Settings,
    caller: Caller,
    request: AnalysisRequest,
    *,
    idempotency_key: str | None = None,
) -> Submitted:
    """Submit an analysis; return the new job, or the original one for a reused key.

    ``conn`` must be in autocommit mode (a pool connection of the API): this function opens
    and commits its own transaction. ``request`` was validated by
    :func:`bi_engine.domain.submission.parse`. The same ``idempotency_key`` from the same user
    within 24 h returns the original job (``created`` False) — also when two such requests
    race: the key's primary key lets exactly one transaction commit a job.
    """
    for _ in range(MAX_KEY_RACES):
        try:
            return await _create(conn, app, settings, caller, request, idempotency_key)
        except _KeyTaken:
            assert idempotency_key is not None
            original = await analyses.by_idempotency_key(
                conn, caller.principal.user_id, idempotency_key
            )
            if original is not None:
                return await _replay(conn, settings, caller, original)
    raise RuntimeError("idempotency key kept changing hands")  # pragma: no cover


async def _create(
    conn: psycopg.AsyncConnection[Any],
    app: procrastinate.App,
    settings: Settings,
    caller: Caller,
    request: AnalysisRequest,
    idempotency_key: str | None,
) -> Submitted:
    job_id = uuid.uuid4()
    # Pipeline mode: BEGIN + defer, then insert + first event, then audit + COMMIT travel
    # in three round trips instead of six.
    async with conn.pipeline(), conn.transaction():
        procrastinate_id = await defer_run(app, conn, job_id, request.priority)
        new = _new_analysis(job_id, caller, request, procrastinate_id, idempotency_key)
        pending = await analyses.insert(conn, new, dumps=_dumps)
        await events.append(conn, job_id, [{"kind": "status", "data": {"status": "queued"}}])
        inserted = await pending.result()
        if not inserted.claimed:
            raise _KeyTaken
        await audit.record(
            conn,
            user_id=caller.principal.user_id,
            action="analysis_requested",
            result="accepted",
            analysis_type=request.analysis,
            job_id=job_id,
            ip=caller.ip,
            request_id=caller.request_id,
            details=_audit_details(request, idempotency_key),
        )
    return _submitted(settings, caller, inserted.row, inserted.snapshot, created=True)


async def create_jobs(
    conn: psycopg.AsyncConnection[Any],
    app: procrastinate.App,
    settings: Settings,
    items: Sequence[tuple[Caller, AnalysisRequest]],
) -> list[Submitted]:
    """Submit several analyses in ONE transaction (group commit); results in input order.

    Same writes as :func:`create_job` for each job — procrastinate job, row, input, first
    event, audit row — but a few statements for the whole batch, so concurrent submissions
    share round trips and one commit. Idempotency keys are not handled here: keyed
    submissions go through :func:`create_job`. ``conn`` must be in autocommit mode.
    """
    job_ids = [uuid.uuid4() for _ in items]
    pairs = list(zip(job_ids, items, strict=True))
    members = [(job_id, request.priority) for job_id, (_, request) in pairs]
    async with conn.pipeline(), conn.transaction():
        procrastinate_ids = await defer_runs(app, conn, members)
        news = [
            _new_analysis(job_id, caller, request, procrastinate_id, None)
            for job_id, (caller, request), procrastinate_id in zip(
                job_ids, items, procrastinate_ids, strict=True
            )
        ]
        pending = await analyses.insert_many(conn, news, dumps=_dumps)
        await analyses.append_queued_events(conn, job_ids)
        entries = [_audit_entry(job_id, *item) for job_id, item in pairs]
        await audit.record_many(conn, entries)
        rows, queued_before, capacity = await pending.result()
    positions = jobs.batch_positions(queued_before, members)
    return [
        _submitted(
            settings, caller, rows[job_id], replace(capacity, position=position), created=True
        )
        for job_id, (caller, _), position in zip(job_ids, items, positions, strict=True)
    ]


async def defer_runs(
    app: procrastinate.App,
    conn: psycopg.AsyncConnection[Any],
    runs: Sequence[tuple[uuid.UUID, str]],
) -> list[int]:
    """Queue ``bi.run_analysis`` for each ``(job_id, priority)`` in one statement on ``conn``."""
    pending = [
        app.configure_task(
            constants.TASK_RUN_ANALYSIS,
            connection=conn,
            queue=constants.QUEUE_ANALYSES,
            priority=queue.procrastinate_priority(priority),
        ).make_new_job(job_id=str(job_id))
        for job_id, priority in runs
    ]
    deferred = await app.job_manager.batch_defer_jobs_async(jobs=pending, connection=conn)
    ids = [job.id for job in deferred]
    assert all(isinstance(job_id, int) for job_id in ids)
    return [job_id for job_id in ids if job_id is not None]


def _audit_entry(job_id: uuid.UUID, caller: Caller, request: AnalysisRequest) -> audit.Entry:
    return audit.Entry(
        user_id=caller.principal.user_id,
        action="analysis_requested",
        result="accepted",
        analysis_type=request.analysis,
        job_id=job_id,
        ip=caller.ip,
        request_id=caller.request_id,
        details=_audit_details(request, None),
    )


def _new_analysis(
    job_id: uuid.UUID,
    caller: Caller,
    request: AnalysisRequest,
    procrastinate_id: int,
    idempotency_key: str | None,
) -> analyses.NewAnalysis:
    return analyses.NewAnalysis(
        id=job_id,
        user_id=caller.principal.user_id,
        user_email=caller.principal.email,
        type=request.analysis,
        agent_team=request.agent_team,
        priority=request.priority,
        sensitivity=request.sensitivity,
        options=request.options(),
        callback_url=request.callback_url,
        data=request.data,
        procrastinate_job_id=procrastinate_id,
        idempotency_key=idempotency_key,
        data_json=request.encode_data(),
    )


def _audit_details(request: AnalysisRequest, idempotency_key: str | None) -> dict[str, Any]:
    return {
        "priority": request.priority,
        "sensitivity": request.sensitivity,
        "agent_team": request.agent_team,
        "idempotency_key": idempotency_key is not None,
        "callback": request.callback_url is not None,
    }


async def _replay(
    conn: psycopg.AsyncConnection[Any], settings: Settings, caller: Caller, original: Row
) -> Submitted:
    snapshot = None
    if original["status"] == "queued":
        snapshot = await analyses.queue_snapshot(conn, original)
    await audit.record(
        conn,
        user_id=caller.principal.user_id,
        action="analysis_requested",
        result="idempotent_replay",
        analysis_type=original["type"],
        job_id=original["id"],
        ip=caller.ip,
        request_id=caller.request_id,
    )
    return _submitted(settings, caller, original, snapshot, created=False)


def _submitted(
    settings: Settings,
    caller: Caller,
    row: Row,
    snapshot: jobs.QueueSnapshot | None,
    *,
    created: bool,
) -> Submitted:
    estimate = None
    if snapshot is not None:
        estimate = jobs.estimate_start(snapshot, settings.worker_concurrency)
    return Submitted(
        row=row,
        created=created,
        position=snapshot.position if snapshot else None,
        estimated_start=estimate,
        stream_token=stream.mint_stream_token(settings, caller.principal, row["id"]),
    )
