"""The frame around every authenticated endpoint: log context, caller, rate limit, audit row.

``guarded(endpoint, Policy(...))`` wraps a request/response endpoint:

1. binds ``job_id`` (when the path names a job) for every log line of the request;
2. authenticates the caller (401, audited as ``denied`` with the reason, user unknown);
   endpoints that take a body read it next, so an oversized one is refused at once (413);
3. applies the policy's rate limit (429 with ``Retry-After`` and ``RateLimit-*``, audited as
   ``rate_limited``; allowed answers carry ``RateLimit-*`` too);
4. runs the endpoint and queues the audit row of its outcome. Use cases that write their
   audit row with their own change (submit, cancel, retry) set ``audited=False``: only
   their refusals are audited here.

``AuditedStream`` does the same for the streaming endpoints (SSE and WebSocket), which are
plain ASGI apps: the row is written when the stream opens or is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import psycopg
import psycopg_pool
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bi_engine import logging as bi_logging
from bi_engine import ratelimit
from bi_engine.api import audit, context, errors
from bi_engine.api.state import engine
from bi_engine.errors import BIError

Endpoint = Callable[[Request], Awaitable[Response]]
_UNAVAILABLE: Final = (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout)
_CLOSE_REASONS: Final = {
    "unauthorized": 401,
    "invalid_token": 401,
    "invalid_last_event_id": 400,
    "job_not_found": 404,
    "too_many_streams": 429,
}
"""A WebSocket refused before its handshake closes with the error code as its reason."""


@dataclass(frozen=True, slots=True)
class Policy:
    action: str
    """The audit log's action, e.g. ``analysis_status_read``."""
    limit: ratelimit.Limit | None = None
    audited: bool = True
    """False where the use case audits its own success in its transaction."""
    body_first: bool = False
    """Read the body (413 as soon as it passes the limit) before the rate limit's round trip."""


def bind_job(connection: HTTPConnection) -> None:
    """``job_id`` on every log line of this request (the middleware unbinds it)."""
    job_id = context.path_job_id(connection)
    if job_id is not None:
        bi_logging.bind(job_id=str(job_id))


def record(connection: HTTPConnection, action: str, status: int, **facts: Any) -> None:
    """Queue this request's audit row (a no-op before the lifespan started the writer)."""
    writer = engine(connection).audit
    if writer is not None:
        writer.add(audit.entry(connection, action, status, **facts))


def guarded(endpoint: Endpoint, policy: Policy) -> Endpoint:
    """``endpoint`` behind authentication, the policy's rate limit and the audit log."""

    async def guarded_endpoint(request: Request) -> Response:
        bind_job(request)
        decision = None
        try:
            who = context.principal(request)
            if policy.body_first:
                await request.body()  # kept by the request for the endpoint
            if policy.limit is not None:
                decision = await _check(request, who.user_id, policy.limit)
            response = await endpoint(request)
        except BIError as exc:
            response = errors.from_bi_error(exc)
            if isinstance(exc, ratelimit.RateLimited):
                response.headers.update(ratelimit.headers(exc.decision))
            record(request, policy.action, exc.status_code, error_code=exc.code)
        except _UNAVAILABLE as exc:
            record(request, policy.action, 503, error_code=type(exc).__name__)
            raise
        except Exception as exc:  # a bug: the middleware answers 500; the row says so
            record(request, policy.action, 500, error_code=type(exc).__name__)
            raise
        else:
            if policy.audited:
                record(request, policy.action, response.status_code)
        if decision is not None:
            response.headers.update(ratelimit.headers(decision))
        return response

    guarded_endpoint.__name__ = getattr(endpoint, "__name__", "endpoint")
    guarded_endpoint.__doc__ = endpoint.__doc__
    return guarded_endpoint


async def _check(request: Request, user_id: str, limit: ratelimit.Limit) -> Any:
    limiter = engine(request).limiter
    if limiter is None:
        return None
    return await limiter.check(user_id, limit)


class AuditedStream:
    """An SSE or WebSocket ASGI endpoint whose opening (or refusal) is audited.

    ``user_of`` tells who opened it (streams accept ``?token=`` and stream tokens, so they
    authenticate on their own); it returns None when the credentials are not valid.
    """

    def __init__(
        self,
        app: ASGIApp,
        action: str,
        user_of: Callable[[HTTPConnection], str | None],
        **details: Any,
    ) -> None:
        self.app = app
        self.action = action
        self.user_of = user_of
        self.details = details
        self.__doc__ = getattr(app, "__doc__", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection = HTTPConnection(scope)
        bind_job(connection)
        recorded = False

        async def send_audited(message: Message) -> None:
            nonlocal recorded
            if not recorded:
                outcome = _stream_outcome(message)
                if outcome is not None:
                    recorded = True
                    self._record(connection, *outcome)
            await send(message)

        try:
            await self.app(scope, receive, send_audited)
        except BIError as exc:
            if not recorded:
                self._record(connection, exc.status_code, exc.code)
            raise

    def _record(self, connection: HTTPConnection, status: int, reason: str | None) -> None:
        user_id = self.user_of(connection)
        record(
            connection,
            self.action,
            status,
            error_code=reason,
            user_id=user_id,
            details=self.details,
        )


def _stream_outcome(message: Message) -> tuple[int, str | None] | None:
    """(status, refusal reason) once the first message tells how the stream opened."""
    kind = message["type"]
    if kind in ("http.response.start", "websocket.http.response.start"):
        return int(message["status"]), None
    if kind == "websocket.accept":
        return 101, None
    if kind == "websocket.close":
        reason = str(message.get("reason") or "") or None
        return _CLOSE_REASONS.get(reason or "", 403), reason
    return None
