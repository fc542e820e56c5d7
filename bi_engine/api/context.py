"""Per-request facts every endpoint needs: the caller, their address, the job in the path."""

from __future__ import annotations

import ipaddress
import uuid

from starlette.requests import Request

from bi_engine import control, submit
from bi_engine.api.state import engine
from bi_engine.auth import principal as auth
from bi_engine.domain import jobs


def principal(request: Request) -> auth.Principal:
    """401 unless ``Authorization: Bearer`` holds a valid backend JWT."""
    return auth.authenticate(engine(request).settings, request.headers.get("authorization"))


def owner_filter(who: auth.Principal) -> str | None:
    """Admins see every job; everyone else only their own."""
    return None if who.is_admin else who.user_id


def job_id(request: Request) -> uuid.UUID:
    """The path's job id; one that is not a UUID names no job (404)."""
    return jobs.parse_job_id(request.path_params["job_id"])


def request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def client_ip(request: Request) -> str | None:
    """The client's address; X-Forwarded-For is believed only from BI_TRUSTED_PROXIES."""
    peer = request.client.host if request.client else None
    trusted = engine(request).settings.trusted_proxies
    if not peer or peer not in trusted:
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed([h for h in hops if _is_ip(h)]):
        if hop not in trusted:
            return hop
    return peer


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def caller(request: Request, who: auth.Principal) -> submit.Caller:
    return submit.Caller(principal=who, ip=client_ip(request), request_id=request_id(request))


def actor(request: Request, who: auth.Principal) -> control.Actor:
    return control.Actor(principal=who, ip=client_ip(request), request_id=request_id(request))
