"""Root endpoints for operators: ``/health``, ``/metrics``, ``/openapi.json`` (no auth).

``/health`` pings the database (latency) and reads, in one statement, the queue depth per
priority, the live workers (procrastinate workers with a heartbeat within
``BI_STALLED_AFTER_S``) and the LLM circuit breakers. The breakers live in the worker
processes: each worker reports its breakers' states into ``llm_circuits`` every few
seconds, and ``/health`` shows what the live workers last reported, next to the outcomes
of the LLM calls of the last 15 minutes (``llm_calls``). 503 only while the database is
unreachable; any other problem is reported in its check, never as a 5xx.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any, Final

import structlog
from starlette.requests import Request
from starlette.responses import Response

from bi_engine import __version__
from bi_engine.api import openapi
from bi_engine.api.responses import JSONResponse
from bi_engine.api.state import EngineState, engine
from bi_engine.db import health as health_rows
from bi_engine.metrics import CONTENT_TYPE

HEALTH_TIMEOUT_S: Final = 3.0
METRICS_TIMEOUT_S: Final = 2.0
PATTERN: Final = "pattern"
CIRCUIT_SOURCE: Final = (
    "states reported by the live workers' circuit breakers (refreshed every few seconds);"
    " recent_calls: LLM call outcomes of the last 15 minutes"
)

log = structlog.stdlib.get_logger("bi_engine.api")


async def _probe(state: EngineState) -> tuple[dict[str, Any], health_rows.Snapshot | None]:
    """The database check, and the snapshot when the database answered."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            async with state.pool.connection(timeout=HEALTH_TIMEOUT_S) as conn:
                await health_rows.ping(conn)
                latency_ms = round((time.perf_counter() - started) * 1000, 2)
                snapshot = await _snapshot(conn, state)
    except Exception as exc:  # any failure means "down": /health never answers 500
        return {"status": "down", "error": type(exc).__name__}, None
    return {"status": "up", "latency_ms": latency_ms}, snapshot


async def _snapshot(conn: Any, state: EngineState) -> health_rows.Snapshot | None:
    try:
        return await health_rows.snapshot(conn, state.settings.stalled_after_s)
    except Exception as exc:  # e.g. a schema not migrated yet: the ping still counts
        log.warning("health.snapshot_failed", error=type(exc).__name__)
        return None


def _queue(snapshot: health_rows.Snapshot) -> dict[str, Any]:
    queued = snapshot.gauges.queued
    return {
        "status": "ok",
        "queued": queued,
        "queued_total": sum(queued.values()),
        "running": snapshot.running,
        "oldest_queued_s": _round(snapshot.oldest_queued_s),
    }


def _workers(snapshot: health_rows.Snapshot, stalled_after_s: float) -> dict[str, Any]:
    alive = snapshot.gauges.workers
    return {
        "status": "ok" if alive else "none",
        "alive": alive,
        "stalled_after_s": stalled_after_s,
        "counts": "procrastinate workers with a recent heartbeat; each worker process runs"
        " a job lane and a maintenance lane",
    }


def _circuit(states: dict[str, int]) -> str:
    for state in ("open", "half_open", "closed"):
        if states.get(state):
            return state
    return "unknown"


def _llm(snapshot: health_rows.Snapshot, chain: tuple[str, ...]) -> dict[str, Any]:
    reported: dict[str, dict[str, int]] = defaultdict(dict)
    for row in snapshot.circuits:
        reported[row["provider"]][row["state"]] = int(row["workers"])
    calls: dict[str, dict[str, int]] = defaultdict(dict)
    for row in snapshot.recent_calls:
        calls[row["provider"]][row["outcome"]] = int(row["calls"])
    providers = [
        {
            "provider": name,
            "circuit": _circuit(reported[name]),
            "workers_reporting": sum(reported[name].values()),
            "open_on_workers": reported[name].get("open", 0),
            "recent_calls": calls[name],
        }
        for name in chain
        if name != PATTERN
    ]
    degraded = any(p["circuit"] == "open" for p in providers)
    return {
        "status": "degraded" if degraded else "ok",
        "chain": list(chain),
        "providers": providers,
        "fallback": PATTERN,
        "source": CIRCUIT_SOURCE,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _unknown(reason: str) -> dict[str, Any]:
    return {"status": "unknown", "reason": reason}


async def health(request: Request) -> Response:
    """200 ``{"status": "healthy", ...}``; 503 while the database is unreachable."""
    state = engine(request)
    database, snapshot = await _probe(state)
    healthy = database["status"] == "up"
    checks: dict[str, Any] = {"database": database}
    if snapshot is not None:
        checks["queue"] = _queue(snapshot)
        checks["workers"] = _workers(snapshot, state.settings.stalled_after_s)
        checks["llm"] = _llm(snapshot, state.settings.effective_llm_chain)
    else:
        reason = "database_unreachable" if not healthy else "snapshot_failed"
        checks.update(queue=_unknown(reason), workers=_unknown(reason), llm=_unknown(reason))
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "version": __version__,
        "checks": checks,
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


async def metrics(request: Request) -> Response:
    """Prometheus text; the database gauges come from one query run now."""
    state = engine(request)
    try:
        async with asyncio.timeout(METRICS_TIMEOUT_S):
            async with state.pool.connection(timeout=METRICS_TIMEOUT_S) as conn:
                gauges = await health_rows.gauges(conn, state.settings.stalled_after_s)
    except Exception as exc:  # the process metrics are still worth serving
        log.warning("metrics.database_gauges_unavailable", error=type(exc).__name__)
        state.metrics.database.update(None, None)
    else:
        state.metrics.database.update(gauges.queued, gauges.workers)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)


async def openapi_json(request: Request) -> Response:
    return JSONResponse(openapi.document(request.app.state.openapi_extra_paths))
