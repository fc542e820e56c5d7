"""Standard security headers on every HTTP response (plain ASGI middleware).

The API answers JSON, Markdown and small HTML reports without scripts or styles, so its
Content-Security-Policy allows nothing at all; ``/dashboard`` serves its own script and
style files (no inline code), so its policy allows ``'self'`` only. Headers an endpoint set
itself are kept. HSTS only in production, where the API sits behind TLS.
"""

from __future__ import annotations

from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP: Final = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DASHBOARD_CSP: Final = "; ".join(
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
DASHBOARD_PREFIX: Final = "/dashboard"
HSTS: Final = "max-age=31536000; includeSubDomains"
COMMON: Final = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)
"""``no-referrer``: stream URLs carry tokens in their query; never leak them onwards."""


def headers_for(path: str, *, production: bool) -> tuple[tuple[str, str], ...]:
    """The security headers of a response to ``path``."""
    dashboard = path == DASHBOARD_PREFIX or path.startswith(DASHBOARD_PREFIX + "/")
    csp = DASHBOARD_CSP if dashboard else API_CSP
    extra = (("Strict-Transport-Security", HSTS),) if production else ()
    return (*COMMON, ("Content-Security-Policy", csp), *extra)


class SecurityHeadersMiddleware:
    """Add :func:`headers_for` to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, *, production: bool = False) -> None:
        self.app = app
        self.api = headers_for("/", production=production)
        self.dashboard = headers_for(DASHBOARD_PREFIX, production=production)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        dashboard = path == DASHBOARD_PREFIX or path.startswith(DASHBOARD_PREFIX + "/")
        chosen = self.dashboard if dashboard else self.api

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in chosen:
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_secured)
