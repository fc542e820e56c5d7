"""Plain ASGI middleware: request ids, access log, metrics, last-resort errors; body limit."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Sequence
from typing import Final

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bi_engine.api import errors, proxies
from bi_engine.errors import BIError
from bi_engine.metrics import ApiMetrics

REQUEST_ID_HEADER: Final = "x-request-id"
_VALID_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
QUIET_ROUTES: Final = frozenset({"/health", "/metrics"})
"""Polled by probes and Prometheus: their access lines are debug level."""

log = structlog.stdlib.get_logger("bi_engine.api")
access_log = structlog.stdlib.get_logger("bi_engine.access")


def _request_id(scope: Scope) -> str:
    incoming = Headers(scope=scope).get(REQUEST_ID_HEADER)
    if incoming and _VALID_REQUEST_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The matched route's path template (never the raw path: bounded label values)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestContextMiddleware:
    """Give each request an id (``X-Request-ID``), log and count it, never leak a traceback.

    The id comes from the request's ``X-Request-ID`` when it is short and made of safe
    characters, else a new one; it is bound (with ``job_id``, bound by the endpoint frame)
    to every log line of the request and returned in the response. One access line per
    request: method, route template (never the raw path or query), status, duration, client.
    """

    def __init__(
        self, app: ASGIApp, metrics: ApiMetrics, trusted: Sequence[proxies.Network] = ()
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("http.unhandled_error", route=route_template(scope))
            if not started:
                await errors.internal_error()(scope, receive, send_with_id)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = route_template(scope)
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self._access(scope, method, route, status, started_at)
            structlog.contextvars.unbind_contextvars("request_id", "job_id")

    def _access(self, scope: Scope, method: str, route: str, status: int, t0: float) -> None:
        emit = access_log.debug if route in QUIET_ROUTES else access_log.info
        client = scope.get("client")
        peer = client[0] if client else None
        forwarded = Headers(scope=scope).getlist("x-forwarded-for") if self.trusted else []
        emit(
            "http.request",
            method=method,
            route=route,
            status=status,
            duration_ms=round((time.perf_counter() - t0) * 1000, 2),
            ip=proxies.client_ip(peer, forwarded, self.trusted),
        )


BODY_IDLE_TIMEOUT_S: Final = 15.0
"""Longest wait for the next piece of a request body that has not ended."""
BODY_TIMEOUT_S: Final = 60.0
"""Longest time a whole request body may take to arrive (a trickle never ends otherwise)."""


class BodyTimeout(BIError):
    """The request body did not arrive in time."""

    status_code = 408
    code = "request_timeout"
    headers = {"Connection": "close"}  # noqa: RUF012


MAX_HEADERS: Final = 100
MAX_HEADER_BYTES: Final = 64 * 1024
"""Beyond these a request is refused with 431 (a JWT and a few proxies' headers fit easily)."""


class HeadersTooLarge(BIError):
    """The request's header fields are too many or too large."""

    status_code = 431
    code = "request_header_fields_too_large"
    headers = {"Connection": "close"}  # noqa: RUF012


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413: at once on Content-Length, else while reading.

    Bytes are counted as they arrive, so an oversized body is never buffered past the limit.
    Too many or too large header fields are refused first, with 431.
    A body that stalls for ``idle_timeout_s`` or takes longer than ``timeout_s`` in all is
    refused with 408 (uvicorn has no body timeout: a slow client would hold its request,
    and the submission waiting on it, open forever).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        idle_timeout_s: float = BODY_IDLE_TIMEOUT_S,
        timeout_s: float = BODY_TIMEOUT_S,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.idle_timeout_s = idle_timeout_s
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_many = _header_excess(scope)
        if too_many is not None:
            await errors.from_bi_error(too_many)(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = errors.from_bi_error(self._too_large(declared))
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        received = 0
        complete = False
        deadline = time.monotonic() + self.timeout_s

        async def counting_receive() -> Message:
            nonlocal received, complete
            if complete:  # after the body: waiting for a disconnect may take forever
                return await receive()
            message = await self._receive_in_time(receive, deadline)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise self._too_large(None)
            return message

        await self.app(scope, counting_receive, send)

    async def _receive_in_time(self, receive: Receive, deadline: float) -> Message:
        wait = min(self.idle_timeout_s, deadline - time.monotonic())
        try:
            async with asyncio.timeout(max(0.0, wait)):
                return await receive()
        except TimeoutError:
            raise BodyTimeout(
                f"The request body did not arrive within {wait:.0f} seconds.",
                details={
                    "idle_timeout_s": self.idle_timeout_s,
                    "timeout_s": self.timeout_s,
                },
            ) from None

    def _too_large(self, declared: int | None) -> errors.PayloadTooLarge:
        details: dict[str, int] = {"max_bytes": self.max_bytes}
        if declared is not None:
            details["content_length"] = declared
        refusal = errors.PayloadTooLarge(
            f"The request body is larger than the limit of {self.max_bytes} bytes.",
            details=details,
        )
        # the rest of the body is never read: close rather than wait for it on this connection
        refusal.headers = {"Connection": "close"}  # type: ignore[attr-defined]
        return refusal


def _header_excess(scope: Scope) -> HeadersTooLarge | None:
    """431 for more than MAX_HEADERS header fields or MAX_HEADER_BYTES of them (uvicorn's
    httptools parser sets no limit of its own)."""
    fields = scope.get("headers") or []
    size = sum(len(name) + len(value) for name, value in fields)
    if len(fields) <= MAX_HEADERS and size <= MAX_HEADER_BYTES:
        return None
    return HeadersTooLarge(
        details={
            "headers": len(fields),
            "bytes": size,
            "max_headers": MAX_HEADERS,
            "max_bytes": MAX_HEADER_BYTES,
        }
    )


def _content_length(scope: Scope) -> int | None:
    raw = Headers(scope=scope).get("content-length")
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw)
