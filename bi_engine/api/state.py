"""What the API process shares between requests, built once by the lifespan."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import procrastinate
import psycopg_pool
from starlette.requests import HTTPConnection

from bi_engine.api.submitter import Submitter
from bi_engine.metrics import ApiMetrics
from bi_engine.settings import Settings

if TYPE_CHECKING:  # both modules read the state of a request: imported for types only
    from bi_engine.api.audit import AuditWriter
    from bi_engine.api.limiter import Limiter


@dataclass
class EngineState:
    """Settings, the one connection pool, the procrastinate App over that pool, metrics.

    Components started by lifespan hooks (the live event listener, caches...) put what they
    share in ``extras`` under their own name.
    """

    settings: Settings
    pool: psycopg_pool.AsyncConnectionPool[Any]
    queue: procrastinate.App
    metrics: ApiMetrics
    submitter: Submitter | None = None
    """Group commit for submissions (None: each submission commits alone)."""
    audit: AuditWriter | None = None
    """Batched audit rows of reads, stream opens and refusals (None: not audited)."""
    limiter: Limiter | None = None
    """Per-user rate limits (None: not limited)."""
    extras: dict[str, Any] = field(default_factory=dict)


LifespanHook = Callable[[EngineState], AbstractAsyncContextManager[None]]
"""Started after the pool and the queue are open, stopped (in reverse order) before they close."""


def engine(connection: HTTPConnection) -> EngineState:
    """The state of the app serving this request."""
    state: EngineState = connection.app.state.engine
    return state
