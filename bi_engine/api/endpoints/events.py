"""Server-Sent Events: one job's progress, and the feed of all the caller's jobs.

Both accept the backend's JWT as ``Authorization: Bearer`` or ``?token=``; a job's stream
also accepts the job-scoped stream token of the 202 response. Resume with the
``Last-Event-ID`` header (what ``EventSource`` sends on reconnect) or ``?last_event_id=``.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from bi_engine import constants
from bi_engine.api.state import EngineState, engine
from bi_engine.auth import principal as auth
from bi_engine.auth import stream as stream_auth
from bi_engine.db import event_feed
from bi_engine.domain import jobs
from bi_engine.errors import BIError
from bi_engine.live import service, sse
from bi_engine.live.service import Live
from bi_engine.live.stream import FeedStream, JobStream

LIVE_KEY: Final = "live"
"""Where the lifespan hook keeps the :class:`~bi_engine.live.service.Live` in ``extras``."""
MAX_SEQ: Final = 2**31 - 1
_FEED_ID = re.compile(r"^([0-9a-fA-F-]{32,36}):(\d{1,10})$")


class InvalidLastEventId(BIError):
    """Last-Event-ID is not an event of this stream: use the id of the last event received."""

    status_code = 400
    code = "invalid_last_event_id"


class StreamTokenScope(auth.InvalidToken):
    """A stream token only opens the event stream of its own job."""


def live_of(connection: HTTPConnection) -> Live:
    live: Live = engine(connection).extras[LIVE_KEY]
    return live


def grant_of(connection: HTTPConnection) -> stream_auth.StreamGrant:
    """The caller from ``Authorization: Bearer`` or else ``?token=`` (JWT or stream token)."""
    settings = engine(connection).settings
    header = connection.headers.get("authorization")
    if header:
        return stream_auth.StreamGrant(auth.authenticate(settings, header), None)
    return stream_auth.verify_query_token(settings, connection.query_params.get("token"))


def last_event_id(connection: HTTPConnection) -> str | None:
    """The header wins: it is what a reconnecting EventSource sends, the query is the URL's."""
    value = connection.headers.get("last-event-id")
    if value is None:
        value = connection.query_params.get("last_event_id")
    value = value.strip() if value is not None else None
    return value or None


def parse_seq(raw: str | int | None) -> int:
    if raw is None:
        return 0
    if isinstance(raw, int) and not isinstance(raw, bool):
        seq = raw
    elif isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 10:
        seq = int(raw)
    else:
        raise InvalidLastEventId(details={"last_event_id": str(raw)[:100]})
    if not 0 <= seq <= MAX_SEQ:
        raise InvalidLastEventId(details={"last_event_id": str(raw)[:100]})
    return seq


async def open_job_stream(connection: HTTPConnection, after: str | int | None) -> JobStream:
    """Authorise, check the resume point and subscribe (429 beyond the per-user limit)."""
    job_id = jobs.parse_job_id(connection.path_params["job_id"])
    grant = grant_of(connection)
    seq = parse_seq(after)
    if not grant.allows(job_id):
        raise jobs.JobNotFound
    live = live_of(connection)
    async with live.reader() as conn:
        info = await event_feed.stream_info(conn, job_id)
    if info is None or not grant.principal.may_see(str(info["user_id"])):
        raise jobs.JobNotFound
    if seq > int(info["last_seq"]):
        raise InvalidLastEventId(details={"last_event_id": seq, "last_seq": info["last_seq"]})
    return JobStream(
        live.hub,
        live.reader,
        job_id=str(job_id),
        owner=str(info["user_id"]),
        caller=grant.principal.user_id,
        after=seq,
        finished=info["status"] in constants.TERMINAL_STATUSES,
        log_end=int(info["last_seq"]),
    )


class StreamEndpoint:
    """A plain ASGI endpoint for long-lived streams.

    A function endpoint would put Starlette's per-route exception wrapper on the path of
    every frame written to every client; errors raised before the response starts still
    reach the app's handlers (the error envelope) through its ExceptionMiddleware.
    """

    def __init__(self, respond: Callable[[Request], Awaitable[ASGIApp]]) -> None:
        self._respond = respond
        self.__doc__ = respond.__doc__

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._respond(Request(scope, receive))
        await response(scope, receive, send)


async def _job_events(request: Request) -> ASGIApp:
    """``GET /jobs/{job_id}/events``: replay after Last-Event-ID, then live, until terminal."""
    stream = await open_job_stream(request, last_event_id(request))
    return sse.JobEventsResponse(stream, live_of(request).keepalive)


job_events = StreamEndpoint(_job_events)


def parse_feed_id(raw: str | None) -> tuple[str, int] | None:
    """``<job_id>:<seq>``, the id of every feed event."""
    if raw is None:
        return None
    match = _FEED_ID.match(raw)
    if match is None:
        raise InvalidLastEventId(details={"last_event_id": raw[:100]})
    try:
        job_id = str(uuid.UUID(match.group(1)))
    except ValueError as exc:
        raise InvalidLastEventId(details={"last_event_id": raw[:100]}) from exc
    return job_id, parse_seq(match.group(2))


async def _all_events(request: Request) -> ASGIApp:
    """``GET /events``: every event of the caller's jobs (admin: all jobs), for dashboards."""
    grant = grant_of(request)
    if grant.job_id is not None:
        raise StreamTokenScope
    resume = parse_feed_id(last_event_id(request))
    who = grant.principal
    live = live_of(request)
    stream = FeedStream(
        live.hub,
        live.reader,
        caller=who.user_id,
        only_user=None if who.is_admin else who.user_id,
        resume=resume,
    )
    return sse.FeedEventsResponse(stream, live.keepalive)


all_events = StreamEndpoint(_all_events)


@contextlib.asynccontextmanager
async def live_hook(state: EngineState) -> AsyncIterator[None]:
    """Lifespan hook: the process's listener over the app's pool, ``bi_sse_connections``."""
    database_url = state.settings.require_database_url()
    async with service.running(
        database_url, state.settings.db_schema, state.pool.connection, state.metrics.registry
    ) as live:
        state.extras[LIVE_KEY] = live
        try:
            yield
        finally:
            state.extras.pop(LIVE_KEY, None)


# ------------------------------------------------------------------------ OpenAPI

_SSE = {"text/event-stream": {"schema": {"type": "string"}}}
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
_TOKEN = {
    "name": "token",
    "in": "query",
    "schema": {"type": "string"},
    "description": "The JWT, or (job streams only) the stream token of the 202 response",
}
_LAST_EVENT_ID = {
    "name": "last_event_id",
    "in": "query",
    "schema": {"type": "string"},
    "description": "Resume after this event id (the Last-Event-ID header wins)",
}
_JOB_PARAM = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}


def _errors(*codes: str) -> dict[str, Any]:
    texts = {
        "400": "Last-Event-ID is not an event of this stream",
        "401": "Missing, invalid or expired token",
        "404": "No such job, or someone else's",
        "429": "Too many open streams for this user (Retry-After)",
        "503": "Database unreachable",
    }
    return {code: {"description": texts[code], "content": _ERROR} for code in codes}


def openapi_paths() -> dict[str, Any]:
    """Path items of the three live endpoints (merged into ``/openapi.json``)."""
    security: list[dict[str, list[str]]] = [{"bearer": []}, {}]
    job_stream = {
        "summary": "Live events of one job (SSE): id <seq>, event <kind>, data <json>",
        "description": "Replays the log after Last-Event-ID, then live; ends after the"
        " terminal event (completed, failed, cancelled). Heartbeat comment every 15 s.",
        "tags": ["live"],
        "security": security,
        "parameters": [_JOB_PARAM, _TOKEN, _LAST_EVENT_ID],
        "responses": {
            "200": {"description": "text/event-stream", "content": _SSE},
            **_errors("400", "401", "404", "429", "503"),
        },
    }
    feed = {
        "summary": "Live events of all the caller's jobs (admin: all jobs), for dashboards",
        "description": "Event ids are '<job_id>:<seq>'; data carries job_id and seq. A resumed"
        " feed re-reads from 30 s before the Last-Event-ID event: de-duplicate by"
        " (job_id, seq).",
        "tags": ["live"],
        "security": security,
        "parameters": [_TOKEN, _LAST_EVENT_ID],
        "responses": {
            "200": {"description": "text/event-stream", "content": _SSE},
            **_errors("400", "401", "429"),
        },
    }
    socket = {
        "summary": "WebSocket: the job's events as {job_id, seq, kind, data} messages",
        "description": 'Send {"last_seq": n} first (or pass ?last_event_id=); closed (1000)'
        " after the terminal event.",
        "tags": ["live"],
        "security": security,
        "parameters": [_JOB_PARAM, _TOKEN, _LAST_EVENT_ID],
        "responses": {
            "101": {"description": "Switching protocols"},
            **_errors("401", "404", "429"),
        },
    }
    return {
        f"{constants.API_PREFIX}/jobs/{{job_id}}/events": {"get": job_stream},
        f"{constants.API_PREFIX}/events": {"get": feed},
        f"{constants.API_PREFIX}/ws/jobs/{{job_id}}": {"get": socket},
    }
