"""Per-request facts every endpoint needs: the caller, their address, the job in the path."""

from __future__ import annotations

import uuid
from typing import Any, Final

from starlette.requests import HTTPConnection, Request

from bi_engine import control, submit
from bi_engine.api import proxies
from bi_engine.api.state import engine
from bi_engine.auth import principal as auth
from bi_engine.domain import jobs

PRINCIPAL_KEY: Final = "principal"
ANALYSIS_TYPE_KEY: Final = "analysis_type"
AUDIT_DETAILS_KEY: Final = "audit_details"


def _state(connection: HTTPConnection) -> dict[str, Any]:
    state: dict[str, Any] = connection.scope.setdefault("state", {})
    return state


def principal(request: HTTPConnection) -> auth.Principal:
    """401 unless ``Authorization: Bearer`` holds a valid backend JWT (checked once a request)."""
    state = _state(request)
    known = state.get(PRINCIPAL_KEY)
    if isinstance(known, auth.Principal):
        return known
    who = auth.authenticate(engine(request).settings, request.headers.get("authorization"))
    state[PRINCIPAL_KEY] = who
    return who


def known_principal(connection: HTTPConnection) -> auth.Principal | None:
    """The caller if this request authenticated already (for its audit row)."""
    known = _state(connection).get(PRINCIPAL_KEY)
    return known if isinstance(known, auth.Principal) else None


def note_analysis_type(connection: HTTPConnection, analysis_type: str) -> None:
    """Remember the type of the job this request touched (its audit row carries it)."""
    _state(connection)[ANALYSIS_TYPE_KEY] = analysis_type


def noted_analysis_type(connection: HTTPConnection) -> str | None:
    value = _state(connection).get(ANALYSIS_TYPE_KEY)
    return value if isinstance(value, str) else None


def note_audit(connection: HTTPConnection, **facts: Any) -> None:
    """Facts for this request's audit row ``details`` (e.g. the template it touched)."""
    _state(connection).setdefault(AUDIT_DETAILS_KEY, {}).update(facts)


def noted_audit(connection: HTTPConnection) -> dict[str, Any]:
    value = _state(connection).get(AUDIT_DETAILS_KEY)
    return dict(value) if isinstance(value, dict) else {}


def owner_filter(who: auth.Principal) -> str | None:
    """Admins see every job; everyone else only their own."""
    return None if who.is_admin else who.user_id


def job_id(request: Request) -> uuid.UUID:
    """The path's job id; one that is not a UUID names no job (404)."""
    return jobs.parse_job_id(request.path_params["job_id"])


def path_job_id(connection: HTTPConnection) -> uuid.UUID | None:
    """The path's job id when there is one and it is a UUID (for logs and audit rows)."""
    raw = connection.scope.get("path_params", {}).get("job_id")
    if not isinstance(raw, str):
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def request_id(request: HTTPConnection) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def client_ip(request: HTTPConnection) -> str | None:
    """The client's address; X-Forwarded-For is believed only from BI_TRUSTED_PROXIES."""
    peer = request.client.host if request.client else None
    trusted = proxies.networks(engine(request).settings.trusted_proxies)
    return proxies.client_ip(peer, request.headers.getlist("x-forwarded-for"), trusted)


def caller(request: Request, who: auth.Principal) -> submit.Caller:
    return submit.Caller(principal=who, ip=client_ip(request), request_id=request_id(request))


def actor(request: Request, who: auth.Principal) -> control.Actor:
    return control.Actor(principal=who, ip=client_ip(request), request_id=request_id(request))
