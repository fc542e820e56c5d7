"""Reading and steering jobs: list, status, result, report, cancel, retry."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import Response

from bi_engine import control, submit
from bi_engine.api import context, report
from bi_engine.api.responses import JSONResponse
from bi_engine.api.state import EngineState, engine
from bi_engine.auth import stream
from bi_engine.db import analyses
from bi_engine.domain import jobs
from bi_engine.domain.submission import InvalidSubmission

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200
_STATUSES: Final = ("queued", "running", "completed", "failed", "cancelled")
_TYPES: Final = (
    "process_analysis",
    "data_interpretation",
    "trend_analysis",
    "optimization_review",
    "custom_analysis",
    "test",
)


def _bad_query(name: str, msg: str, kind: str) -> InvalidSubmission:
    return InvalidSubmission(details=[{"loc": ["query", name], "msg": msg, "type": kind}])


def _choices(request: Request, name: str, allowed: tuple[str, ...]) -> list[str]:
    """``?status=a,b`` or ``?status=a&status=b``; anything outside ``allowed`` is a 422."""
    values = [v.strip() for raw in request.query_params.getlist(name) for v in raw.split(",")]
    values = [v for v in values if v]
    for value in values:
        if value not in allowed:
            raise _bad_query(name, f"Input should be one of: {', '.join(allowed)}", "enum")
    return values


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.strip().isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise _bad_query("limit", f"Input should be an integer from 1 to {MAX_LIMIT}", "limit")
    return int(raw)


def encode_cursor(row: dict[str, Any]) -> str:
    raw = orjson.dumps([row["created_at"].isoformat(), str(row["id"])])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str | None) -> tuple[datetime, uuid.UUID] | None:
    if raw is None:
        return None
    try:
        created_at, job_id = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        return datetime.fromisoformat(created_at), uuid.UUID(job_id)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise _bad_query("cursor", "Not a cursor this API returned", "cursor") from None


async def list_jobs(request: Request) -> Response:
    """The caller's jobs (admin: everyone's), newest first, with an opaque next_cursor."""
    who = context.principal(request)
    statuses = _choices(request, "status", _STATUSES)
    types = _choices(request, "type", _TYPES)
    limit = _limit(request)
    after = decode_cursor(request.query_params.get("cursor"))
    async with engine(request).pool.connection() as conn:
        rows = await analyses.list_page(
            conn,
            user_id=context.owner_filter(who),
            statuses=statuses,
            types=types,
            after=after,
            limit=limit + 1,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    body = {
        "success": True,
        "jobs": [jobs.summary_document(row) for row in rows],
        "next_cursor": encode_cursor(rows[-1]) if more and rows else None,
    }
    return JSONResponse(body)


async def _with_result(request: Request) -> dict[str, Any]:
    """The job in the path with its result, if the caller may see it; 404 otherwise."""
    who = context.principal(request)
    job_id = context.job_id(request)
    async with engine(request).pool.connection() as conn:
        row = await analyses.get_result(conn, job_id, user_id=context.owner_filter(who))
    if row is None:
        raise jobs.JobNotFound
    context.note_analysis_type(request, row["type"])
    return row


async def _status_document(
    conn: analyses.Connection, state: EngineState, row: dict[str, Any]
) -> dict[str, Any]:
    if row["status"] != "queued":
        return jobs.status_document(row)
    snapshot = await analyses.queue_snapshot(conn, row)
    estimate = jobs.estimate_start(snapshot, state.settings.worker_concurrency)
    return jobs.status_document(row, position=snapshot.position, estimated_start=estimate)


async def get_job(request: Request) -> Response:
    """The status document (also at ``/status/{job_id}``)."""
    state = engine(request)
    who = context.principal(request)
    job_id = context.job_id(request)
    async with state.pool.connection() as conn:
        row = await analyses.get(conn, job_id, user_id=context.owner_filter(who))
        if row is None:
            raise jobs.JobNotFound
        context.note_analysis_type(request, row["type"])
        return JSONResponse(await _status_document(conn, state, row))


async def get_result(request: Request) -> Response:
    """The result document; 409 with the status until the job completed."""
    row = await _with_result(request)
    return JSONResponse(jobs.result_document(row))


async def get_report(request: Request) -> Response:
    """The report as Markdown, or as HTML for ``Accept: text/html``."""
    row = await _with_result(request)
    jobs.require_result(row)
    markdown = report.markdown_of(row)
    if report.wants_html(request.headers.get("accept")):
        return Response(report.to_html(markdown, row), media_type="text/html; charset=utf-8")
    return Response(markdown, media_type="text/markdown; charset=utf-8")


async def cancel(request: Request) -> Response:
    """Queued: cancelled at once (200). Running: abort requested (202). Ended: 409."""
    state = engine(request)
    who = context.principal(request)
    job_id = context.job_id(request)
    async with state.pool.connection() as conn:
        outcome = await control.cancel(conn, state.queue, job_id, context.actor(request, who))
    status = 200 if outcome.outcome == "cancelled" else 202
    headers = {"Location": jobs.status_url(job_id)}  # every 202 carries one
    return JSONResponse(jobs.status_document(outcome.row), status_code=status, headers=headers)


async def retry(request: Request) -> Response:
    """Failed or cancelled: queued again (202 + job document). Otherwise 409."""
    state = engine(request)
    who = context.principal(request)
    job_id = context.job_id(request)
    async with state.pool.connection() as conn:
        row = await control.retry(conn, state.queue, job_id, context.actor(request, who))
        snapshot = await analyses.queue_snapshot(conn, row)
    accepted = submit.Submitted(
        row=row,
        created=True,
        position=snapshot.position,
        estimated_start=jobs.estimate_start(snapshot, state.settings.worker_concurrency),
        stream_token=stream.mint_stream_token(state.settings, who, job_id),
    )
    return JSONResponse(
        accepted.document(), status_code=202, headers={"Location": jobs.status_url(job_id)}
    )
