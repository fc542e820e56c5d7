"""Job-scoped, short-lived stream tokens for ``?token=`` (browsers' EventSource sends no headers).

A stream token is an HS256 JWT signed with ``JWT_SECRET`` but with its own issuer and
audience and ``scope: "stream"``: it opens the event streams of ONE job and nothing else,
and it is never accepted as a bearer token.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

import jwt

from bi_engine.auth import principal as auth
from bi_engine.settings import Settings

STREAM_AUDIENCE: Final = "bi-stream"
STREAM_ISSUER: Final = "bi-engine"
STREAM_SCOPE: Final = "stream"
STREAM_TOKEN_TTL_S: Final = 3600
"""Long enough to follow a job of BI_JOB_TIMEOUT_S with reconnects, short enough to leak little."""


@dataclass(frozen=True, slots=True)
class StreamGrant:
    """Who may open a stream, and which job: ``job_id`` None means "any of their jobs"."""

    principal: auth.Principal
    job_id: uuid.UUID | None

    def allows(self, job_id: uuid.UUID) -> bool:
        return self.job_id is None or self.job_id == job_id


def mint_stream_token(
    settings: Settings,
    principal: auth.Principal,
    job_id: uuid.UUID,
    *,
    ttl_s: int = STREAM_TOKEN_TTL_S,
) -> str:
    """A token that opens only the SSE/WebSocket streams of ``job_id``."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": STREAM_ISSUER,
        "aud": STREAM_AUDIENCE,
        "scope": STREAM_SCOPE,
        "sub": principal.user_id,
        "role": principal.role,
        "job_id": str(job_id),
        "iat": now,
        "exp": now + ttl_s,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def verify_query_token(settings: Settings, token: str | None) -> StreamGrant:
    """Check a ``?token=`` value: either the backend's JWT or a stream token.

    Returns the principal and, for a stream token, the only job it may open
    (``grant.allows(job_id)``). Raises :class:`bi_engine.auth.principal.Unauthenticated`
    (401) when the token is missing or invalid in any way.
    """
    if not token:
        raise auth.Unauthenticated("Send the token as 'Authorization: Bearer' or '?token='.")
    if _is_stream_token(token):
        return _verify_stream_token(settings, token)
    return StreamGrant(auth.verify_user_token(settings, token), None)


def _is_stream_token(token: str) -> bool:
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    return isinstance(unverified, dict) and unverified.get("scope") == STREAM_SCOPE


def _verify_stream_token(settings: Settings, token: str) -> StreamGrant:
    claims = auth.decode(settings, token, audience=[STREAM_AUDIENCE], issuer=STREAM_ISSUER)
    if claims.get("scope") != STREAM_SCOPE:
        raise auth.InvalidToken
    try:
        job_id = uuid.UUID(str(claims.get("job_id")))
    except ValueError as exc:
        raise auth.InvalidToken("The stream token names no job.") from exc
    return StreamGrant(auth.principal_from_claims(claims, user_key="sub"), job_id)
