"""Minting tokens in exactly the format the Node backend (jsonwebtoken) issues."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from bi_engine.settings import Settings

ALGORITHM = "HS256"


def mint_user_token(
    settings: Settings,
    *,
    user_id: str,
    email: str = "",
    role: str = "user",
    ttl_s: int = 3600,
    audience: str | None = None,
) -> str:
    """A development JWT like the backend's: HS256, ``iss``, ``aud``, ``exp``, user claims."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "userId": user_id,
        "email": email,
        "role": role,
        "iss": settings.jwt_issuer,
        "aud": audience or settings.jwt_audience[0],
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM)
