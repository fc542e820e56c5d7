"""Server-Sent Events: one job's progress, and the feed of all the caller's jobs.

Both accept the backend's JWT as ``Authorization: Bearer`` or ``?token=``; a job's stream
also accepts the job-scoped stream token of the 202 response. Resume with the
``Last-Event-ID`` header (what ``EventSource`` sends on reconnect) or ``?last_event_id=``.
"""

from __future__ import annotations

import re
import uuid
from typing import Final

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from bi_engine import constants
from bi_engine.api.state import engine
from bi_engine.auth import principal as auth
from bi_engine.auth import stream as stream_auth
from bi_engine.db import event_feed
from bi_engine.domain import jobs
from bi_engine.errors import BIError
from bi_engine.live import sse
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
    )


async def job_events(request: Request) -> Response:
    """``GET /jobs/{job_id}/events``: replay after Last-Event-ID, then live, until terminal."""
    stream = await open_job_stream(request, last_event_id(request))
    return sse.LiveEventSourceResponse(sse.job_frames(stream.batches()), on_close=stream.close)


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


async def all_events(request: Request) -> Response:
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
    return sse.LiveEventSourceResponse(sse.feed_frames(stream.batches()), on_close=stream.close)
