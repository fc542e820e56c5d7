"""One attempt of one analysis: load, run the runner under supervision, record the outcome.

    load ──> running ──> runner (progress via the ProgressReporter) ──> completed
                │                                                  ├─> failed (code)
                │  watcher: abort request, deadline, lost ownership├─> cancelled
                └─────────────────────────────────────────────────└─> queued + retrying

The runner runs as its own task; while waiting for it the attempt polls the analysis row
(abort requested? still ours?) every ``watch_interval_s`` and enforces ``BI_JOB_TIMEOUT_S``;
when one of them fires the runner is cancelled, so even a long step is stopped promptly. Each
outcome is written in one transaction with its terminal event (see ``progress.py``).

Between attempts the analysis is ``queued`` again: a ``retrying`` status event carries the
attempt that failed, the delay and the reason; ``attempts`` counts attempts started.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import psycopg_pool

from bi_engine import constants
from bi_engine import logging as bi_logging
from bi_engine.db import job_runs
from bi_engine.db import templates as template_rows
from bi_engine.domain import templates
from bi_engine.logging import get_logger
from bi_engine.settings import Settings
from workers import progress, retry
from workers.job import AnalysisOutcome, AnalysisRunner, JobContext
from workers.runners import RunnerRegistry

CANCELLED: Final = "cancelled"
TIMEOUT: Final = "timeout"
LOST: Final = "lost"
SHUTDOWN_REASON: Final = "worker_shutdown"

log = get_logger("bi.worker")


def _never() -> bool:
    return False


def _always() -> bool:
    return True


@dataclass(frozen=True, slots=True)
class QueueContext:
    """What the pipeline needs to know from the queue about the job it runs."""

    should_abort: Callable[[], bool] = _never
    """True once the queue was asked to abort the job (a cancel through procrastinate)."""
    is_shutdown: Callable[[], bool] = _always
    """Asked when the job is cancelled: True if the worker is shutting down."""


class Observer(Protocol):
    """Told how attempts go (the worker's metrics, ``workers.metrics.WorkerMetrics``)."""

    def attempt_started(self, job_type: str, wait_s: float | None) -> None: ...

    def attempt_ended(self, job_type: str, kind: str, code: str | None, run_s: float) -> None: ...

    def llm_calls_hook(self) -> Callable[[Sequence[Any]], None]: ...

    def callback_attempted(self, outcome: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Deps:
    """Everything an attempt needs, built once per worker process."""

    settings: Settings
    pool: psycopg_pool.AsyncConnectionPool[Any]
    registry: RunnerRegistry
    on_terminal: progress.OnTerminal | None = None
    progress_interval_s: float = progress.DEFAULT_INTERVAL_S
    watch_interval_s: float = 0.5
    max_attempts: int = retry.MAX_ATTEMPTS
    extras: dict[str, Any] = field(default_factory=dict)
    observer: Observer | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended, for the task to translate into procrastinate's terms."""

    kind: str
    """completed | failed | cancelled | retrying | superseded | skipped"""
    code: str | None = None
    retry_in_s: float = 0.0


async def run_analysis(deps: Deps, job_id: uuid.UUID, queue: QueueContext | None = None) -> Outcome:
    """Run the next attempt of ``job_id``. Re-raises CancelledError after handing back."""
    bi_logging.bind(job_id=str(job_id))  # every line of this job (its own task) carries it
    try:
        async with deps.pool.connection() as conn:
            row = await job_runs.load(conn, job_id)
        if row is None or row["status"] in constants.TERMINAL_STATUSES:
            log.info("job_skipped", job_id=str(job_id), status=row and row["status"])
            return Outcome("skipped")
        return await _Attempt(deps, row, queue or QueueContext()).run()
    finally:
        bi_logging.unbind("job_id")


class _Attempt:
    def __init__(self, deps: Deps, row: job_runs.Row, queue: QueueContext) -> None:
        self.deps = deps
        self.row = row
        self.queue = queue
        self.job_id: uuid.UUID = row["id"]
        self.attempt: int = row["attempts"] + 1
        self.t0 = time.monotonic()
        self.deadline = self.t0 + deps.settings.job_timeout_s
        self.reason: str | None = None
        self.template: dict[str, Any] | None = None
        self.reporter = progress.ProgressReporter(
            deps.pool,
            self.job_id,
            self.attempt,
            interval_s=deps.progress_interval_s,
            on_terminal=deps.on_terminal if row["callback_url"] else None,
        )

    async def run(self) -> Outcome:
        if self.deps.observer is not None:
            self.deps.observer.attempt_started(self.row["type"], self._wait_s())
        self.reporter.begin()
        try:
            return await self._run()
        except asyncio.CancelledError:
            await asyncio.shield(self._interrupted())
            raise
        finally:
            await self.reporter.close()

    def _wait_s(self) -> float | None:
        """Seconds since queueing, for the first start after (re)queueing only."""
        queued_at = self.row.get("queued_at")
        if self.row.get("started_at") is not None or not isinstance(queued_at, datetime):
            return None
        return (datetime.now(UTC) - queued_at).total_seconds()

    async def _run(self) -> Outcome:
        if self.row["abort_requested_at"] is not None:
            return await self._end(progress.cancelled(), "cancelled")
        try:
            self.template = await self._template()
            runner = await self.deps.registry.resolve(self.row["type"])
        except Exception as exc:  # unsupported type, or an extension that failed to load
            return await self._failed(self._classified(exc))
        return await self._supervise(runner)

    async def _template(self) -> dict[str, Any] | None:
        """The saved template a custom analysis names (checked at submit; gone: invalid)."""
        named = (self.row["data"] or {}).get("template_id")
        if self.row["type"] != "custom_analysis" or named is None:
            return None
        try:
            template_id = uuid.UUID(str(named))
        except ValueError:
            template_id = None
        row = None
        if template_id is not None:
            async with self.deps.pool.connection() as conn:
                row = await template_rows.for_run(conn, template_id)
        if row is None:
            raise retry.InvalidJobData(
                "The saved template this analysis names no longer exists.",
                details={"template_id": str(named)[:200]},
            )
        return templates.for_job(row)

    async def _supervise(self, runner: AnalysisRunner) -> Outcome:
        runner_task = asyncio.ensure_future(runner(self._context(), self.reporter))
        try:
            await self._watch(runner_task)
        finally:
            if not runner_task.done():
                runner_task.cancel()
                await asyncio.wait({runner_task})
        if self.reason is not None:
            return await self._stopped()
        return await self._finished(runner_task)

    async def _finished(self, task: asyncio.Future[AnalysisOutcome]) -> Outcome:
        if task.cancelled():
            # a runner that stops itself without an abort request is a bug
            return await self._failed(retry.classify(RuntimeError("runner cancelled itself")))
        exc = task.exception()
        if isinstance(exc, progress.AttemptLost):
            return self._superseded()
        if exc is not None:
            return await self._failed(self._classified(exc))
        return await self._completed(task.result())

    def _classified(self, exc: BaseException) -> retry.Classified:
        classified = retry.classify(exc)
        if classified.is_bug:
            log.error("job_internal_error", job_id=str(self.job_id), exc_info=exc)
        return classified

    # --------------------------------------------------------------- supervision

    def _context(self) -> JobContext:
        options = dict(self.row["options"] or {})
        if self.row["agent_team"]:
            options.setdefault("agent_team", self.row["agent_team"])
        if self.template is not None:
            options["template"] = self.template
        extras = {"pool": self.deps.pool, **self.deps.extras}
        if self.deps.observer is not None:
            extras["llm_calls"] = self.deps.observer.llm_calls_hook()
        return JobContext(
            job_id=self.job_id,
            type=self.row["type"],
            data=self.row["data"] or {},
            options=options,
            sensitivity=self.row["sensitivity"],
            attempt=self.attempt,
            settings=self.deps.settings,
            should_abort=self._should_abort,
            extras=extras,
        )

    async def _should_abort(self) -> bool:
        if self.reason is None and time.monotonic() >= self.deadline:
            self.reason = TIMEOUT
        if self.reason is None and self.queue.should_abort():
            self.reason = CANCELLED
        return self.reason is not None

    async def _watch(self, runner_task: asyncio.Future[AnalysisOutcome]) -> None:
        """Wait for the runner; between waits poll the row and the clock for a reason to stop."""
        while self.reason is None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.reason = TIMEOUT
                return
            done, _ = await asyncio.wait(
                {runner_task}, timeout=min(self.deps.watch_interval_s, left)
            )
            if done:
                return
            if self.queue.should_abort():
                self.reason = CANCELLED
                return
            await self._check_row()

    async def _check_row(self) -> None:
        try:
            async with self.deps.pool.connection() as conn:
                row = await job_runs.watch(conn, self.job_id)
        except Exception as exc:  # a blip: the next poll tries again
            log.warning("job_watch_failed", job_id=str(self.job_id), error=str(exc))
            return
        if row is None or not self._still_ours(row):
            self.reason = LOST
        elif row["abort_requested_at"] is not None:
            self.reason = CANCELLED

    def _still_ours(self, row: job_runs.Row) -> bool:
        """The row is waiting for this attempt or running it (a write may be committing)."""
        if self.reporter.started:
            return bool(row["status"] == "running" and row["attempts"] == self.attempt)
        return row["status"] in job_runs.ACTIVE and row["attempts"] in (
            self.attempt - 1,
            self.attempt,
        )

    # --------------------------------------------------------------- outcomes

    async def _stopped(self) -> Outcome:
        if self.reason == CANCELLED:
            return await self._end(progress.cancelled(), "cancelled")
        if self.reason == TIMEOUT:
            timeout = self.deps.settings.job_timeout_s
            message = f"The analysis did not finish within the {timeout:g} s time limit."
            return await self._end(progress.failed("timeout", message), "failed", "timeout")
        return self._superseded()

    async def _completed(self, outcome: AnalysisOutcome) -> Outcome:
        done = job_runs.Completion(
            result=outcome.result,
            report_markdown=outcome.report_markdown,
            provider=outcome.provider,
            degraded=outcome.degraded,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            cost_eur=outcome.cost_eur,
            step=progress.STEP_COMPLETED,
        )
        change = progress.completed(done, outcome.headline, self.job_id)
        return await self._end(change, "completed")

    async def _failed(self, error: retry.Classified) -> Outcome:
        if error.transient and self.attempt < self.deps.max_attempts:
            delay = retry.backoff_s(self.attempt)
            change = progress.retrying(self.attempt, delay, error.message)
            return await self._end(change, "retrying", error.code, delay)
        message = error.message
        if error.transient:
            message = f"{message} (gave up after {self.attempt} attempts)"
        return await self._end(progress.failed(error.code, message), "failed", error.code)

    async def _end(
        self, change: progress.Change, kind: str, code: str | None = None, delay: float = 0.0
    ) -> Outcome:
        if await self.reporter.finish(change) is None:
            return self._superseded()
        if self.deps.observer is not None:
            run_s = time.monotonic() - self.t0
            self.deps.observer.attempt_ended(self.row["type"], kind, code, run_s)
        log.info(
            f"job_{kind}",
            job_id=str(self.job_id),
            type=self.row["type"],
            attempt=self.attempt,
            seconds=round(time.monotonic() - self.t0, 3),
            **({"code": code} if code else {}),
            **({"retry_in_s": delay} if kind == "retrying" else {}),
        )
        return Outcome(kind, code, delay)

    def _superseded(self) -> Outcome:
        log.warning("job_attempt_superseded", job_id=str(self.job_id), attempt=self.attempt)
        return Outcome("superseded")

    async def _interrupted(self) -> None:
        """procrastinate cancelled the job: a user abort, or a shutdown past its grace period."""
        if not self.queue.is_shutdown():
            await self._end(progress.cancelled(), "cancelled")
        elif self.reporter.started:
            change = progress.retrying(self.attempt, 0.0, SHUTDOWN_REASON, handed_back=True)
            await self._end(change, "retrying", delay=0.0)
