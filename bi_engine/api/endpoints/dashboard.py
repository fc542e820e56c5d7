"""``/dashboard``: the live dashboard's static files and the bundled sample submissions.

The page is plain HTML, CSS and JavaScript modules served as they are (no build step, no
CDN). Every dashboard response carries a strict Content-Security-Policy: the page runs only
its own script files, talks only to this origin, and may not be framed. The sample bodies
are read from ``bi_engine/samples`` at request time, so they exist in one place only.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Final

import orjson
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bi_engine.api.responses import JSONResponse
from bi_engine.domain import vocabulary
from bi_engine.errors import BIError

PACKAGE_DIR: Final = Path(__file__).resolve().parents[2]
STATIC_DIR: Final = PACKAGE_DIR / "dashboard"
SAMPLES_DIR: Final = PACKAGE_DIR / "samples"
BASE: Final = "/dashboard"

CSP: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: Final = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
"""``no-referrer``: stream URLs carry tokens in their query; never leak them onwards."""


class SampleNotFound(BIError):
    """No bundled sample has this name: GET /dashboard/samples lists them."""

    status_code = 404
    code = "sample_not_found"


class SecureHeaders:
    """Add :data:`SECURITY_HEADERS` to every response of the wrapped ASGI app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_secured)


@cache
def sample_catalogue() -> tuple[dict[str, Any], ...]:
    """Name, analysis type, label and size of each bundled sample (files never change)."""
    labels = {t.type: t.label for t in vocabulary.ANALYSIS_TYPES}
    entries = []
    for path in sorted(SAMPLES_DIR.glob("*.json")):
        body = orjson.loads(path.read_bytes())
        kind = str(body.get("type") or body.get("analysis_type") or "")
        entries.append(
            {
                "name": path.stem,
                "type": kind,
                "label": labels.get(kind, kind),
                "bytes": path.stat().st_size,
                "url": f"{BASE}/samples/{path.stem}",
            }
        )
    return tuple(entries)


async def list_samples(request: Request) -> Response:
    """The bundled sample submissions the page offers in its form."""
    return JSONResponse({"samples": list(sample_catalogue())})


async def get_sample(request: Request) -> Response:
    """One sample's submit body, exactly as bundled (only names the catalogue lists)."""
    name = request.path_params["name"]
    if name not in {entry["name"] for entry in sample_catalogue()}:
        raise SampleNotFound(details={"name": str(name)[:100]})
    body = (SAMPLES_DIR / f"{name}.json").read_bytes()
    return Response(body, media_type="application/json")


async def to_index(request: Request) -> Response:
    """``/dashboard`` → ``/dashboard/`` so the page's relative module URLs resolve."""
    return RedirectResponse(f"{BASE}/", status_code=308)


def _secured(endpoint: Any) -> Any:
    async def secured(request: Request) -> Response:
        response: Response = await endpoint(request)
        for name, value in SECURITY_HEADERS:
            response.headers[name] = value
        return response

    secured.__doc__ = endpoint.__doc__
    return secured


def routes() -> list[BaseRoute]:
    """The dashboard's part of the route table (samples before the static mount)."""
    return [
        Route(BASE, _secured(to_index), methods=["GET"]),
        Route(f"{BASE}/samples", _secured(list_samples), methods=["GET"]),
        Route(f"{BASE}/samples/{{name}}", _secured(get_sample), methods=["GET"]),
        Mount(
            BASE, app=SecureHeaders(StaticFiles(directory=STATIC_DIR, html=True, check_dir=False))
        ),
    ]


# ------------------------------------------------------------------------ OpenAPI

_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_paths() -> dict[str, Any]:
    """Path items of the dashboard (merged into ``/openapi.json``)."""
    html = {"text/html": {"schema": {"type": "string"}}}
    json_any = {"application/json": {"schema": {"type": "object"}}}
    return {
        BASE: {
            "get": {
                "summary": "The live dashboard (static page under /dashboard/)",
                "tags": ["dashboard"],
                "security": [],
                "responses": {
                    "200": {"description": "The page and its files", "content": html},
                    "308": {"description": "Redirect to /dashboard/"},
                },
            }
        },
        f"{BASE}/samples": {
            "get": {
                "summary": "The bundled sample submissions: name, type, label, bytes, url",
                "tags": ["dashboard"],
                "security": [],
                "responses": {"200": {"description": "Sample catalogue", "content": json_any}},
            }
        },
        f"{BASE}/samples/{{name}}": {
            "get": {
                "summary": "One bundled sample's submit body, ready for POST /analyze",
                "tags": ["dashboard"],
                "security": [],
                "parameters": [_NAME],
                "responses": {
                    "200": {"description": "The submit body", "content": json_any},
                    "404": {"description": "No sample of this name"},
                },
            }
        },
    }
