"""One place turns every error into the contract's envelope.

``{"success": false, "error": {"code", "message", "details"}}`` for BIError and its
subclasses, for Starlette's own HTTP errors (unknown route 404, 405) and, as a last
resort, for unexpected exceptions (500) — and 503 while the database is unreachable.
"""

from __future__ import annotations

from typing import Any

import psycopg
import psycopg_pool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from bi_engine.api.responses import JSONResponse
from bi_engine.errors import BIError


class BadRequest(BIError):
    """The request is malformed."""

    status_code = 400
    code = "bad_request"


class EmptyBody(BadRequest):
    """The request body is empty: send a JSON object."""

    code = "empty_body"


class MalformedJSON(BadRequest):
    """The request body is not valid JSON."""

    code = "malformed_json"


class PayloadTooLarge(BIError):
    """The request body is larger than BI_MAX_BODY_BYTES."""

    status_code = 413
    code = "payload_too_large"


class DatabaseUnavailable(BIError):
    """The database is unreachable right now; try again shortly."""

    status_code = 503
    code = "database_unavailable"
    headers = {"Retry-After": "5"}  # noqa: RUF012


_HTTP_CODES = {
    404: ("not_found", "No such route."),
    405: ("method_not_allowed", "This method is not allowed on this route."),
}


def envelope(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message, "details": details}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return JSONResponse(envelope(code, message, details), status_code=status, headers=headers)


def from_bi_error(exc: BIError) -> Response:
    headers = dict(getattr(exc, "headers", None) or {})
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return error_response(exc.status_code, exc.code, exc.message, exc.details, headers or None)


async def bi_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BIError)
    return from_bi_error(exc)


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code, message = _HTTP_CODES.get(exc.status_code, (f"http_{exc.status_code}", exc.detail))
    return error_response(exc.status_code, code, message, None, dict(exc.headers or {}) or None)


async def database_error(_request: Request, exc: Exception) -> Response:
    return from_bi_error(DatabaseUnavailable(details={"reason": type(exc).__name__}))


def internal_error() -> Response:
    return error_response(500, "internal_error", "Something went wrong on our side.")


HANDLERS: dict[Any, Any] = {
    BIError: bi_error,
    HTTPException: http_error,
    psycopg.OperationalError: database_error,
    psycopg.InterfaceError: database_error,
    psycopg_pool.PoolTimeout: database_error,
}
