"""``create_app(settings)``: the API's composition root.

The lifespan opens ONE psycopg pool and the procrastinate App over that same pool, the
submission writers, the audit writer and the rate limiter, keeps them on
``app.state.engine`` (:class:`~bi_engine.api.state.EngineState`), then starts the lifespan
hooks (other components: the live event listener...) and stops everything in reverse order
(the audit writer flushes its rows before the pool closes).

Middleware, outermost first: request id + access log + metrics, security headers, CORS,
body limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Final

import psycopg_pool
import structlog
from psycopg.rows import dict_row
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from bi_engine import queue
from bi_engine.api import errors, proxies, routes
from bi_engine.api.audit import AuditWriter
from bi_engine.api.endpoints import dashboard, events
from bi_engine.api.limiter import Limiter, RefusalCache, redis_key_prefix
from bi_engine.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from bi_engine.api.security import SecurityHeadersMiddleware
from bi_engine.api.state import EngineState, LifespanHook
from bi_engine.api.submitter import Submitter
from bi_engine.db.connection import connect_kwargs
from bi_engine.metrics import ApiMetrics
from bi_engine.settings import Settings

POOL_MIN: Final = 2
POOL_MAX: Final = 20
STARTUP_WAIT_S: Final = 10.0
POOL_TIMEOUT_S: Final = 10.0
"""The longest a request waits for a connection; then 503 (database unreachable or saturated)."""
RECONNECT_TIMEOUT_S: Final = 10.0
"""A lost connection is retried with backoff for this long, then afresh on the next request:
the API serves again within seconds of the database coming back, whatever the outage."""

LIFESPAN_HOOKS: tuple[LifespanHook, ...] = (events.live_hook,)
"""Hooks every app starts (in order) once the pool and the queue are open."""

log = structlog.stdlib.get_logger("bi_engine.api")


def make_pool(settings: Settings) -> psycopg_pool.AsyncConnectionPool[Any]:
    """Autocommit connections (use cases open their own transactions), rows as dicts."""
    kwargs = {
        **connect_kwargs(settings.db_schema, application_name="bi-engine-api"),
        "autocommit": True,
        "row_factory": dict_row,
    }
    return psycopg_pool.AsyncConnectionPool(
        settings.require_database_url(),
        kwargs=kwargs,
        min_size=POOL_MIN,
        max_size=POOL_MAX,
        open=False,
        name="bi-engine-api",
        timeout=POOL_TIMEOUT_S,
        reconnect_timeout=RECONNECT_TIMEOUT_S,
    )


def make_limiter(
    settings: Settings, pool: psycopg_pool.AsyncConnectionPool[Any], redis_prefix: str | None
) -> Limiter:
    """Postgres limits; with REDIS_URL, refusals are also remembered in Redis."""
    cache = None
    if settings.redis_url:
        prefix = redis_prefix or redis_key_prefix(
            settings.require_database_url(), settings.db_schema
        )
        cache = RefusalCache.from_url(settings.redis_url, prefix)
    return Limiter(pool, cache)


@asynccontextmanager
async def _engine(
    settings: Settings,
    metrics: ApiMetrics,
    hooks: Sequence[LifespanHook],
    redis_prefix: str | None = None,
) -> AsyncIterator[EngineState]:
    pool = make_pool(settings)
    await pool.open(wait=False)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(pool.close)
        try:
            await pool.wait(timeout=STARTUP_WAIT_S)
        except psycopg_pool.PoolTimeout:
            log.warning("api.database_unreachable_at_startup")
        app = queue.make_app(settings.require_database_url(), settings.db_schema)
        await queue.open_app(app, pool)
        stack.push_async_callback(app.close_async)
        submitter = Submitter(pool=pool, queue=app, settings=settings, metrics=metrics)
        submitter.start()
        stack.push_async_callback(submitter.close)
        audit = AuditWriter(pool)
        audit.start()
        stack.push_async_callback(audit.close)
        limiter = make_limiter(settings, pool, redis_prefix) if settings.rate_limits else None
        if limiter is not None:
            stack.push_async_callback(limiter.close)
        state = EngineState(
            settings=settings,
            pool=pool,
            queue=app,
            metrics=metrics,
            submitter=submitter,
            audit=audit,
            limiter=limiter,
        )
        for hook in hooks:
            await stack.enter_async_context(hook(state))
        yield state


CORS_HEADERS: Final = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "Prefer",
    "Last-Event-ID",
    "X-Request-ID",
)
CORS_EXPOSED: Final = (
    "Location",
    "X-Request-ID",
    "Preference-Applied",
    "Idempotent-Replayed",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
)


def _cors(settings: Settings) -> list[Middleware]:
    """CORS for the Vue front ends of BI_CORS_ORIGINS (none when it is empty)."""
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=list(CORS_HEADERS),
            expose_headers=list(CORS_EXPOSED),
            max_age=600,
        )
    ]


def create_app(
    settings: Settings,
    *,
    hooks: Sequence[LifespanHook] = (),
    redis_prefix: str | None = None,
) -> Starlette:
    """The ASGI app for ``settings``; ``hooks`` run after :data:`LIFESPAN_HOOKS`.

    ``redis_prefix`` overrides the rate-limit cache's key prefix (by default it names the
    database and schema).
    """
    settings.require_database_url()
    trusted = proxies.networks(settings.trusted_proxies)
    metrics = ApiMetrics()
    all_hooks = (*LIFESPAN_HOOKS, *hooks)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with _engine(settings, metrics, all_hooks, redis_prefix) as state:
            app.state.engine = state
            yield

    app = Starlette(
        routes=routes.routes(),
        middleware=[
            Middleware(RequestContextMiddleware, metrics=metrics, trusted=trusted),
            Middleware(SecurityHeadersMiddleware, production=settings.is_production),
            *_cors(settings),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        ],
        exception_handlers=errors.HANDLERS,
        lifespan=lifespan,
    )
    app.state.openapi_extra_paths = {**events.openapi_paths(), **dashboard.openapi_paths()}
    return app
