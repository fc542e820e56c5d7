"""Who is calling: the backend's JWT (``Authorization: Bearer``) turned into a Principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

import jwt

from bi_engine.errors import BIError
from bi_engine.settings import Settings

ALGORITHMS: Final = ("HS256",)
"""HS256 only: anything else (none, RS256, HS384, HS512...) is refused."""
ADMIN_ROLE: Final = "admin"
MAX_USER_ID_LENGTH: Final = 200


class Unauthenticated(BIError):
    """Authentication required: send 'Authorization: Bearer <JWT>'."""

    status_code = 401
    code = "unauthorized"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Bearer realm="bi-engine"'}


class InvalidToken(Unauthenticated):
    """The token is invalid or expired."""

    code = "invalid_token"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: ``admin`` sees and acts on every job, everyone else on their own."""

    user_id: str
    email: str | None = None
    role: str = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN_ROLE

    def may_see(self, owner_id: str) -> bool:
        return self.is_admin or owner_id == self.user_id


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or :class:`Unauthenticated`."""
    if not authorization:
        raise Unauthenticated
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Use 'Authorization: Bearer <JWT>'.")
    return token.strip()


def decode(settings: Settings, token: str, *, audience: list[str], issuer: str) -> dict[str, Any]:
    """Verify signature, algorithm, issuer, audience and a required ``exp``."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=list(ALGORITHMS),
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iss", "aud"]},
            leeway=5,
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("The token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"The token is invalid: {_reason(exc)}") from exc
    if not isinstance(claims, dict):
        raise InvalidToken
    return claims


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]


def verify_user_token(settings: Settings, token: str) -> Principal:
    """The backend's JWT -> Principal (401 on any problem). Stream tokens are refused here."""
    claims = decode(
        settings, token, audience=list(settings.jwt_audience), issuer=settings.jwt_issuer
    )
    if claims.get("scope") == "stream":
        raise InvalidToken("A stream token only opens the event stream of its job.")
    return principal_from_claims(claims, user_key="userId")


def _storable(text: str) -> bool:
    """Text Postgres can store: no NUL character, valid UTF-8 (no lone surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def principal_from_claims(claims: dict[str, Any], *, user_key: str) -> Principal:
    user_id = claims.get(user_key)
    if isinstance(user_id, bool) or not isinstance(user_id, str | int):
        raise InvalidToken(f"The token has no '{user_key}' claim.")
    user_id = str(user_id)
    if not 1 <= len(user_id) <= MAX_USER_ID_LENGTH or not _storable(user_id):
        raise InvalidToken(f"The token's '{user_key}' claim is empty, too long or not text.")
    email = claims.get("email")
    role = claims.get("role")
    if isinstance(role, str) and not _storable(role):
        raise InvalidToken("The token's 'role' claim is not text.")
    return Principal(
        user_id=user_id,
        email=email if isinstance(email, str) and email and _storable(email) else None,
        role=role if isinstance(role, str) and role else "user",
    )


def authenticate(settings: Settings, authorization: str | None) -> Principal:
    """The Principal of an ``Authorization`` header value."""
    return verify_user_token(settings, bearer_token(authorization))
