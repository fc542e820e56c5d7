"""``POST /analyze`` (and n8n's ``POST /api/analyze``): submit an analysis."""

from __future__ import annotations

import re
from typing import Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import Response

from bi_engine import constants, submit
from bi_engine.api import context, errors, waiting
from bi_engine.api.responses import JSONResponse
from bi_engine.api.state import EngineState, engine
from bi_engine.auth.principal import Principal
from bi_engine.db import analyses
from bi_engine.db import templates as template_rows
from bi_engine.domain import jobs, submission, templates
from bi_engine.webhooks import guard

_KEY: Final = re.compile(r"^[\x21-\x7e]{1,255}$")


def decode_json(body: bytes) -> Any:
    """400 for an empty body or text that is not JSON."""
    if not body.strip():
        raise errors.EmptyBody
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.MalformedJSON(details={"reason": str(exc)[:200]}) from None


def idempotency_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not _KEY.match(raw):
        raise submission.InvalidSubmission(
            details=[
                {
                    "loc": ["header", "Idempotency-Key"],
                    "msg": "Use 1 to 255 visible ASCII characters",
                    "type": "idempotency_key",
                }
            ]
        )
    return raw


async def analyze(request: Request) -> Response:
    """Validate, submit in one transaction, answer 202 (or 200 when ``Prefer: wait`` saw it end)."""
    state = engine(request)
    who = context.principal(request)
    wait_s = waiting.preferred_wait(request.headers.get("prefer"))
    key = idempotency_key(request.headers.get("idempotency-key"))
    body = await request.body()
    parsed = submission.parse(decode_json(body), raw=body)
    context.note_analysis_type(request, parsed.analysis)
    _check_callback(state, parsed)
    await _check_template(state, who, parsed)
    submitted = await _submit(state, context.caller(request, who), parsed, key)
    if submitted.created:
        state.metrics.jobs_submitted.labels(parsed.analysis, parsed.priority).inc()
    headers = {"Location": jobs.status_url(submitted.job_id)}
    if not submitted.created:
        headers["Idempotent-Replayed"] = "true"
    if submitted.row["status"] in constants.TERMINAL_STATUSES:
        wait_s = 0  # a replayed job that already ended: answer with its outcome now
    elif wait_s is not None:
        headers["Preference-Applied"] = f"wait={wait_s}"
    if wait_s is None:
        return JSONResponse(submitted.document(), status_code=202, headers=headers)
    return await _after_wait(state, submitted, wait_s, headers)


def _check_callback(state: EngineState, parsed: submission.AnalysisRequest) -> None:
    """422 at once for a callback_url no delivery would ever be made to (names are
    resolved and checked again before each delivery)."""
    if parsed.callback_url is None:
        return
    try:
        guard.check_literal(parsed.callback_url, state.settings.callback_allowed_hosts)
    except guard.UnsafeCallbackURL as exc:
        problem = {"loc": ["callback_url"], "msg": exc.message, "type": exc.code}
        raise submission.InvalidSubmission(details=[problem]) from None


async def _check_template(
    state: EngineState, who: Principal, parsed: submission.AnalysisRequest
) -> None:
    """A custom analysis may name only a template its submitter may use (else 422)."""
    template_id = templates.template_id_of(parsed.analysis, parsed.data)
    if template_id is None:
        return
    async with state.pool.connection() as conn:
        if not await template_rows.exists(conn, template_id, context.owner_filter(who)):
            raise templates.unknown_template()


async def _submit(
    state: EngineState,
    caller: submit.Caller,
    parsed: submission.AnalysisRequest,
    key: str | None,
) -> submit.Submitted:
    """Without an Idempotency-Key the submission joins the next group commit."""
    if key is None and state.submitter is not None:
        return await state.submitter.submit(caller, parsed)
    async with state.pool.connection() as conn:
        return await submit.create_job(
            conn, state.queue, state.settings, caller, parsed, idempotency_key=key
        )


async def _after_wait(
    state: EngineState, submitted: submit.Submitted, wait_s: int, headers: dict[str, str]
) -> Response:
    """200 with the result (or the final status) if the job ended in time, else the 202."""
    row = await waiting.until_finished(state.pool, submitted.job_id, wait_s)
    if row is None:
        return JSONResponse(await _current(state, submitted), status_code=202, headers=headers)
    if row["status"] == "completed" and row.get("result") is not None:
        return JSONResponse(jobs.result_document(row), status_code=200, headers=headers)
    return JSONResponse(jobs.status_document(row), status_code=200, headers=headers)


async def _current(state: EngineState, submitted: submit.Submitted) -> dict[str, Any]:
    """The 202 document refreshed after waiting (the job may be running by now)."""
    async with state.pool.connection() as conn:
        row = await analyses.get(conn, submitted.job_id)
        if row is None:
            return submitted.document()
        snapshot = None
        if row["status"] == "queued":
            snapshot = await analyses.queue_snapshot(conn, row)
    estimate = None
    if snapshot is not None:
        estimate = jobs.estimate_start(snapshot, state.settings.worker_concurrency)
    return jobs.accepted_document(
        row,
        stream_token=submitted.stream_token,
        position=snapshot.position if snapshot else None,
        estimated_start=estimate,
    )
