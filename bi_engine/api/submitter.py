"""Group commit for submissions: concurrent requests share one transaction.

Each submission's transaction commits a NOTIFY, and NOTIFY serialises commits database-wide
through the WAL flush; a transaction also costs the API process several round trips. So a
few writer tasks take whatever submissions are waiting and write them together with
:func:`bi_engine.submit.create_jobs`. With one request in flight a writer takes it at once
(no added delay); under load the batches grow by themselves.

If a batch fails, its submissions are retried one by one, so one bad submission never fails
the others and each request gets its own answer or error — unless no connection could be had
at all (the database is down): then every request of the batch gets its 503 at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from dataclasses import dataclass, field
from typing import Any, Final

import procrastinate
import psycopg_pool
import structlog

from bi_engine import submit
from bi_engine.domain.submission import AnalysisRequest
from bi_engine.metrics import ApiMetrics
from bi_engine.settings import Settings

WRITERS: Final = 4
MAX_BATCH: Final = 100

log = structlog.stdlib.get_logger("bi_engine.api")

_Item = tuple[submit.Caller, AnalysisRequest, "asyncio.Future[submit.Submitted]"]


@dataclass
class BatchStats:
    batches: int = 0
    jobs: int = 0
    largest: int = 0
    fallbacks: int = 0


@dataclass
class Submitter:
    """Writer tasks over the app's pool; ``submit`` waits for its job to be committed."""

    pool: psycopg_pool.AsyncConnectionPool[Any]
    queue: procrastinate.App
    settings: Settings
    writers: int = WRITERS
    max_batch: int = MAX_BATCH
    metrics: ApiMetrics | None = None
    stats: BatchStats = field(default_factory=BatchStats)
    _waiting: collections.deque[_Item] = field(default_factory=collections.deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _closing: bool = False

    async def submit(self, caller: submit.Caller, request: AnalysisRequest) -> submit.Submitted:
        """Queue the submission for the next batch; return once it is committed."""
        if self._closing or not self._tasks:
            async with self.pool.connection() as conn:
                return await submit.create_job(conn, self.queue, self.settings, caller, request)
        future: asyncio.Future[submit.Submitted] = asyncio.get_running_loop().create_future()
        self._waiting.append((caller, request, future))
        self._ready.set()
        return await future

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._writer()) for _ in range(self.writers)]

    async def close(self) -> None:
        """Write what is waiting, then stop the writers."""
        self._closing = True
        self._ready.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        while self._waiting and len(batch) < self.max_batch:
            item = self._waiting.popleft()
            if not item[2].done():  # its request went away before it was written
                batch.append(item)
        if not self._waiting and not self._closing:
            self._ready.clear()
        return batch

    async def _writer(self) -> None:
        while True:
            await self._ready.wait()
            batch = self._take()
            if batch:
                try:
                    await self._write(batch)
                except Exception as exc:  # a writer must never die: requests wait on it
                    log.exception("submit.writer_error")
                    for _, _, future in batch:
                        _settle(future, error=exc)
            elif self._closing and not self._waiting:
                return

    async def _write(self, batch: list[_Item]) -> None:
        self.stats.batches += 1
        self.stats.jobs += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        if self.metrics is not None:
            self.metrics.submit_batches.inc()
            self.metrics.submit_batched_jobs.inc(len(batch))
        try:
            async with self.pool.connection() as conn:
                results = await submit.create_jobs(
                    conn, self.queue, self.settings, [(c, r) for c, r, _ in batch]
                )
        except psycopg_pool.PoolTimeout as exc:  # no connection: one by one would wait again
            for _, _, future in batch:
                _settle(future, error=exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][2], error=exc)
                return
            log.warning("submit.batch_failed", jobs=len(batch), error=type(exc).__name__)
            self.stats.fallbacks += 1
            await asyncio.gather(*(self._write_one(item) for item in batch))
            return
        for (_, _, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)

    async def _write_one(self, item: _Item) -> None:
        caller, request, future = item
        try:
            async with self.pool.connection() as conn:
                result = await submit.create_job(conn, self.queue, self.settings, caller, request)
        except Exception as exc:
            _settle(future, error=exc)
        else:
            _settle(future, result=result)


def _settle(
    future: asyncio.Future[submit.Submitted],
    *,
    result: submit.Submitted | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert result is not None
        future.set_result(result)
