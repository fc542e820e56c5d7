"""Root endpoints for operators: ``/health``, ``/metrics``, ``/openapi.json`` (no auth)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from bi_engine import __version__
from bi_engine.api import openapi
from bi_engine.api.responses import JSONResponse
from bi_engine.api.state import engine
from bi_engine.metrics import CONTENT_TYPE

HEALTH_TIMEOUT_S: Final = 3.0


async def _database_check(request: Request) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            async with engine(request).pool.connection(timeout=HEALTH_TIMEOUT_S) as conn:
                await conn.execute("SELECT 1")
    except Exception as exc:  # any failure means "down": /health never answers 500
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def health(request: Request) -> Response:
    """200 ``{"status": "healthy", ...}``; 503 while the database is unreachable."""
    database = await _database_check(request)
    healthy = database["status"] == "up"
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "version": __version__,
        "checks": {"database": database},
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


async def metrics(request: Request) -> Response:
    return Response(engine(request).metrics.render(), media_type=CONTENT_TYPE)


async def openapi_json(request: Request) -> Response:
    return JSONResponse(openapi.document(request.app.state.openapi_extra_paths))
