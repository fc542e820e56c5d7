"""Audit rows of reads, stream opens and refusals, written in batches off the request path.

Submissions, cancels and retries write their audit row inside their own transaction
(``bi_engine.submit``, ``bi_engine.control``). Every other audited request hands its row
to the :class:`AuditWriter`: one background task writes whatever is waiting with one
multi-row INSERT, so a status read costs no extra round trip. Rows wait in memory while
the database is unreachable and are retried; the lifespan flushes them on shutdown.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import uuid
from typing import Any, Final

import psycopg_pool
import structlog
from starlette.requests import HTTPConnection

from bi_engine.api import context
from bi_engine.db import audit

MAX_BATCH: Final = 500
MAX_PENDING: Final = 100_000
"""Rows kept while the database is unreachable; beyond that the oldest are dropped (logged)."""
RETRY_S: Final = 1.0
CLOSE_TIMEOUT_S: Final = 10.0

RESULTS: Final = {
    400: "invalid",
    401: "denied",
    403: "denied",
    404: "not_found",
    409: "conflict",
    413: "invalid",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}

log = structlog.stdlib.get_logger("bi_engine.audit")


def result_of(status: int) -> str:
    """The audit ``result`` word for an HTTP status."""
    if status < 400:
        return "ok"
    return RESULTS.get(status, "error" if status >= 500 else "rejected")


def entry(
    connection: HTTPConnection,
    action: str,
    status: int,
    *,
    error_code: str | None = None,
    user_id: str | None = None,
    job_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> audit.Entry:
    """The audit row of this request: who (None when not authenticated), from where, outcome."""
    who = context.known_principal(connection)
    facts = {**context.noted_audit(connection), **(details or {})}
    if error_code is not None:
        facts["reason"] = error_code
    if status >= 400:
        facts["status"] = status
    return audit.Entry(
        user_id=user_id if user_id is not None else (who.user_id if who else None),
        action=action,
        result=result_of(status),
        analysis_type=context.noted_analysis_type(connection),
        job_id=job_id if job_id is not None else context.path_job_id(connection),
        ip=context.client_ip(connection),
        request_id=context.request_id(connection),
        details=facts,
    )


class AuditWriter:
    """Batches audit rows into multi-row INSERTs on one background task."""

    def __init__(
        self,
        pool: psycopg_pool.AsyncConnectionPool[Any],
        *,
        max_batch: int = MAX_BATCH,
        max_pending: int = MAX_PENDING,
        retry_s: float = RETRY_S,
    ) -> None:
        self.pool = pool
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.retry_s = retry_s
        self.written = 0
        self.dropped = 0
        self._pending: collections.deque[audit.Entry] = collections.deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def add(self, row: audit.Entry) -> None:
        """Queue one row (never blocks the request)."""
        if len(self._pending) >= self.max_pending:
            self._pending.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("audit.rows_dropped", dropped=self.dropped, pending=len(self._pending))
        self._pending.append(row)
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="bi-audit-writer")

    async def flush(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Wait until every queued row is written; False if that took longer than allowed."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Write what is waiting (retrying for up to ``timeout_s``), then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                async with asyncio.timeout(timeout_s):
                    await asyncio.shield(self._task)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self._pending:
            log.error("audit.rows_lost_at_shutdown", rows=len(self._pending))

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._write_all()
            if not self._pending:
                self._idle.set()
                if self._closing:
                    return

    async def _write_all(self) -> None:
        """Write batches until nothing waits; on a failure wait and retry the same rows."""
        while self._pending:
            size = min(self.max_batch, len(self._pending))
            batch = [self._pending.popleft() for _ in range(size)]
            try:
                await self._write(batch)
            except BaseException as exc:
                self._pending.extendleft(reversed(batch))  # never lose them: back in front
                if not isinstance(exc, Exception):
                    raise
                log.warning("audit.write_failed", rows=len(batch), error=type(exc).__name__)
                await asyncio.sleep(self.retry_s)
                continue
            self.written += len(batch)

    async def _write(self, batch: list[audit.Entry]) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            await audit.record_many(conn, batch)
