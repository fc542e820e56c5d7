"""The ProgressReporter: an attempt's writes, batched into few transactions.

NOTIFY serialises commits database-wide, so progress is not written per call: the reporter
keeps what arrives and flushes it at most once per ``interval_s`` while progress flows, in
one transaction that appends all pending events (one ``append_events`` call, one NOTIFY) and
updates ``analyses.progress``/``current_step``. A state change (completed, failed,
cancelled, back to queued) first takes everything pending, so it lands in the same
transaction, before the terminal event. The start of the attempt (status ``running``) is
pending like any progress: a job that finishes within the first interval costs a single
transaction.

Every write is fenced on the attempt number (see :mod:`bi_engine.db.job_runs`); when the
fence fails the reporter reports :class:`AttemptLost` and writes nothing more.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
import psycopg_pool

from bi_engine import constants
from bi_engine.db import events as event_log
from bi_engine.db import job_runs
from bi_engine.logging import get_logger

DEFAULT_INTERVAL_S: Final = 0.15
WRITE_RETRIES: Final = 6
"""A state change is retried this many times (backoff up to ~30 s) when the database blips."""

STEP_RUNNING: Final = "Starting"
STEP_COMPLETED: Final = "Report ready"
STEP_FAILED: Final = "Analysis stopped"
STEP_CANCELLED: Final = "Cancelled"
STEP_RETRY: Final = "Waiting to retry"
STEP_HANDED_BACK: Final = "Waiting for an available AI Team"

OnTerminal = Callable[[psycopg.AsyncConnection[Any], job_runs.Row, str], Awaitable[None]]
"""Called inside the transaction that ends a job with a ``callback_url`` (to queue it)."""

log = get_logger("bi.worker")


class AttemptLost(Exception):
    """Another attempt owns this analysis now; this one must stop without writing."""


class _HookFailed(Exception):
    """The on_terminal hook raised: the transaction rolled back."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        super().__init__(str(error))


@dataclass(frozen=True, slots=True)
class Change:
    """A state change of the attempt: the fenced UPDATE and the event that announces it."""

    kind: str
    """``completed``, ``failed``, ``cancelled`` or ``retrying``."""
    apply: Callable[
        [psycopg.AsyncConnection[Any], uuid.UUID, job_runs.Fence, float, list[event_log.Event]],
        Awaitable[job_runs.Row | None],
    ]
    event: event_log.Event
    terminal: bool = True


@dataclass(slots=True)
class _Pending:
    events: list[event_log.Event] = field(default_factory=list)
    progress: int | None = None
    step: str | None = None
    start: bool = False

    def __bool__(self) -> bool:
        return bool(self.events) or self.start or self.progress is not None


class ProgressReporter:
    """Implements :class:`workers.job.ProgressSink` for one attempt of one job."""

    def __init__(
        self,
        pool: psycopg_pool.AsyncConnectionPool[Any],
        job_id: uuid.UUID,
        attempt: int,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        on_terminal: OnTerminal | None = None,
    ) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.flushes = 0
        self._pool = pool
        self._interval = interval_s
        self._on_terminal = on_terminal
        self._fence = job_runs.Fence(attempt, started=False)
        self._t0 = time.monotonic()
        self._last_flush = self._t0
        self._pending = _Pending()
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._lost = False
        self._closed = False

    @property
    def started(self) -> bool:
        """True once the row says ``running`` for this attempt."""
        return self._fence.started

    @property
    def lost(self) -> bool:
        return self._lost

    def begin(self) -> None:
        """Queue the start of the attempt: status ``running`` and its event."""
        self._pending.start = True
        self._pending.events.append(
            {"kind": "status", "data": {"status": "running", "attempt": self.attempt}}
        )
        self._schedule()

    async def progress(
        self, percent: int, step: str, message: str, agent: str | None = None
    ) -> None:
        """Record progress; written with the next flush (rapid updates of a step coalesce)."""
        self._raise_if_broken()
        percent = max(0, min(100, int(percent)))
        data = {"progress": percent, "step": step, "message": message, "agent": agent}
        events = self._pending.events
        last = events[-1] if events else None
        if last and last["kind"] == "progress" and _same_step(last["data"], data):
            events[-1] = {"kind": "progress", "data": data}
        else:
            events.append({"kind": "progress", "data": data})
        self._pending.progress, self._pending.step = percent, step
        self._schedule()

    async def flush(self) -> None:
        """Write what is pending now (one transaction, one NOTIFY)."""
        self._raise_if_broken()
        await self._shielded(None)
        self._raise_if_broken()

    async def finish(self, change: Change) -> job_runs.Row | None:
        """Write everything pending plus ``change`` in one transaction; None if not the owner.

        Retried on connection errors: a state change must not be lost to a database blip.
        A failing ``on_terminal`` hook is logged and the change written without it.
        """
        self._closed = True
        self._cancel_timer()
        delay = 0.25
        for attempt in range(WRITE_RETRIES):
            try:
                return await self._shielded(change)
            except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
                if attempt == WRITE_RETRIES - 1:
                    raise
                log.warning("state_write_retry", job_id=str(self.job_id), error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)
            except _HookFailed as exc:
                log.error("terminal_hook_failed", job_id=str(self.job_id), exc_info=exc.error)
                self._on_terminal = None
        return None  # pragma: no cover - the loop returns or raises

    async def close(self) -> None:
        """Stop the flush timer (the attempt is over, or was handed to procrastinate)."""
        self._closed = True
        self._cancel_timer()

    # ----------------------------------------------------------------- internals

    def _raise_if_broken(self) -> None:
        if self._lost:
            raise AttemptLost
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _schedule(self) -> None:
        """Flush at most once per interval: a timer, armed only while something is pending."""
        if self._closed or self._timer is not None:
            return
        if self._flushing is not None and not self._flushing.done():
            return  # the running flush re-arms the timer if more arrived meanwhile
        delay = max(0.0, self._last_flush + self._interval - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None

    def _fire(self) -> None:
        self._timer = None
        if not self._closed:
            self._flushing = asyncio.get_running_loop().create_task(self._flush_in_background())

    async def _flush_in_background(self) -> None:
        try:
            await self._shielded(None)
        except Exception as exc:  # reported to the runner by its next progress() call
            self._error = exc
        if self._pending and not self._lost:
            self._schedule()

    async def _shielded(self, change: Change | None) -> job_runs.Row | None:
        """Run the write as its own task: a cancelled caller never cuts a transaction."""
        task = asyncio.ensure_future(self._locked_write(change))
        task.add_done_callback(_consume)
        return await asyncio.shield(task)

    async def _locked_write(self, change: Change | None) -> job_runs.Row | None:
        async with self._lock:
            if self._lost:
                return None
            pending, self._pending = self._pending, _Pending()
            try:
                row = await self._write(pending, change)
            except BaseException:
                self._restore(pending)
                raise
            self._last_flush = time.monotonic()
            return row

    async def _write(self, pending: _Pending, change: Change | None) -> job_runs.Row | None:
        if not pending and change is None:
            return None
        elapsed = time.monotonic() - self._t0
        events = [*pending.events, *([change.event] if change else [])]
        hook = self._on_terminal if change is not None and change.terminal else None
        async with self._pool.connection() as conn:
            if hook is None:  # one statement, its own transaction
                row = await self._apply(conn, pending, change, elapsed, events)
            else:
                async with conn.transaction():
                    row = await self._apply(conn, pending, change, elapsed, events)
                    if row is not None:
                        await self._run_hook(conn, row, change.kind if change else "")
        if row is None:
            self._lost = True
            return None
        self.flushes += 1
        self._fence = job_runs.Fence(self.attempt, started=True)
        return row

    async def _apply(
        self,
        conn: psycopg.AsyncConnection[Any],
        pending: _Pending,
        change: Change | None,
        elapsed: float,
        events: list[event_log.Event],
    ) -> job_runs.Row | None:
        if change is not None:
            return await change.apply(conn, self.job_id, self._fence, elapsed, events)
        return await job_runs.mark_running(
            conn,
            self.job_id,
            self._fence,
            elapsed_s=elapsed,
            progress=pending.progress,
            step=pending.step or (STEP_RUNNING if pending.start else None),
            events=events,
        )

    async def _run_hook(
        self, conn: psycopg.AsyncConnection[Any], row: job_runs.Row, kind: str
    ) -> None:
        assert self._on_terminal is not None
        try:
            await self._on_terminal(conn, row, kind)
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout):
            raise
        except Exception as exc:
            raise _HookFailed(exc) from exc

    def _restore(self, pending: _Pending) -> None:
        """A failed write keeps its events for the next one, ahead of newer ones."""
        newer = self._pending
        pending.events.extend(newer.events)
        pending.start = pending.start or newer.start
        if newer.progress is not None:
            pending.progress, pending.step = newer.progress, newer.step
        self._pending = pending


def _same_step(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a.get("step") == b.get("step") and a.get("agent") == b.get("agent"))


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


# --------------------------------------------------------------------------- changes


def completed(done: job_runs.Completion, headline: str, job_id: uuid.UUID) -> Change:
    async def apply(
        conn: psycopg.AsyncConnection[Any],
        jid: uuid.UUID,
        fence: job_runs.Fence,
        el: float,
        events: list[event_log.Event],
    ) -> job_runs.Row | None:
        return await job_runs.complete(conn, jid, fence, done, elapsed_s=el, events=events)

    data = {
        "status": "completed",
        "headline": headline,
        "result_url": f"{constants.API_PREFIX}/jobs/{job_id}/result",
    }
    return Change("completed", apply, {"kind": "completed", "data": data})


def failed(code: str, message: str) -> Change:
    async def apply(
        conn: psycopg.AsyncConnection[Any],
        jid: uuid.UUID,
        fence: job_runs.Fence,
        el: float,
        events: list[event_log.Event],
    ) -> job_runs.Row | None:
        return await job_runs.fail(
            conn,
            jid,
            fence,
            code=code,
            message=message,
            step=STEP_FAILED,
            elapsed_s=el,
            events=events,
        )

    data = {"status": "failed", "error": {"code": code, "message": message}}
    return Change("failed", apply, {"kind": "failed", "data": data})


def cancelled(message: str = "The analysis was cancelled on request.") -> Change:
    async def apply(
        conn: psycopg.AsyncConnection[Any],
        jid: uuid.UUID,
        fence: job_runs.Fence,
        el: float,
        events: list[event_log.Event],
    ) -> job_runs.Row | None:
        return await job_runs.cancel(
            conn, jid, fence, message=message, step=STEP_CANCELLED, elapsed_s=el, events=events
        )

    data = {"status": "cancelled", "message": message}
    return Change("cancelled", apply, {"kind": "cancelled", "data": data})


def retrying(attempt: int, retry_in_s: float, reason: str, *, handed_back: bool = False) -> Change:
    step = STEP_HANDED_BACK if handed_back else STEP_RETRY

    async def apply(
        conn: psycopg.AsyncConnection[Any],
        jid: uuid.UUID,
        fence: job_runs.Fence,
        el: float,
        events: list[event_log.Event],
    ) -> job_runs.Row | None:
        return await job_runs.requeue(conn, jid, fence, step=step, elapsed_s=el, events=events)

    data = {"status": "retrying", "attempt": attempt, "retry_in_s": retry_in_s, "reason": reason}
    return Change("retrying", apply, {"kind": "status", "data": data}, terminal=False)
