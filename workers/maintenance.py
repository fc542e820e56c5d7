"""Periodic upkeep: recover the jobs of dead workers, keep waiting bounded, prune old rows.

Recovery never reuses the stalled procrastinate job: it ends it and queues a fresh one for
the same analysis. A worker that was presumed dead and wakes up can then only fail to end
its own (already ended) job row; it can never end or reschedule the fresh one, and its
writes to the analysis are refused by the attempt fence.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Final

import procrastinate
import psycopg
import psycopg_pool

from bi_engine import constants
from bi_engine.db import events as event_log
from bi_engine.db import job_runs
from bi_engine.logging import get_logger
from bi_engine.settings import Settings
from workers import progress

WORKER_LOST: Final = "worker_lost"
FAIR_SHARE: Final = 2
"""Jobs per user and priority level served before other users' jobs of that level."""
MAX_DEMOTION: Final = 9
"""Demotion stays within a level (normal 10 never sinks to low 0)."""
STARVED_PRIORITY: Final = 40
"""Above every level: a job that waited past the bound runs next."""
_FINISH_FOR: Final = {"completed": "succeeded", "failed": "failed", "cancelled": "aborted"}

log = get_logger("bi.maintenance")


@dataclass(slots=True)
class Recovery:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    """procrastinate jobs ended without a new run (finished analyses, maintenance ticks)."""
    orphans: list[str] = field(default_factory=list)
    """analyses found waiting or running without any queue job, queued again or failed."""

    def __bool__(self) -> bool:
        return bool(self.requeued or self.failed or self.cancelled or self.closed)


async def recover_stalled(
    app: procrastinate.App,
    pool: psycopg_pool.AsyncConnectionPool[Any],
    settings: Settings,
    *,
    max_attempts: int,
    on_terminal: progress.OnTerminal | None = None,
) -> Recovery:
    """Run again the jobs whose worker stopped sending heartbeats (``stalled_after_s``)."""
    report = Recovery()
    async with pool.connection() as conn, conn.transaction():
        stalled = await job_runs.stalled_jobs(conn, stalled_after_s=settings.stalled_after_s)
        for job in stalled:
            await _recover(app, conn, job, report, max_attempts, on_terminal)
    async with pool.connection() as conn, conn.transaction():
        found = await job_runs.orphans(
            conn, task_name=constants.TASK_RUN_ANALYSIS, grace_s=settings.stalled_after_s
        )
        for analysis in found:
            await _adopt(app, conn, analysis, report, max_attempts, on_terminal)
    if report:
        log.info(
            "stalled_jobs_recovered",
            requeued=report.requeued,
            failed=report.failed,
            cancelled=report.cancelled,
            closed=report.closed,
            orphans=report.orphans,
        )
    return report


async def _recover(
    app: procrastinate.App,
    conn: psycopg.AsyncConnection[Any],
    job: job_runs.Row,
    report: Recovery,
    max_attempts: int,
    on_terminal: progress.OnTerminal | None,
) -> None:
    if job["task_name"] == constants.TASK_RUN_ANALYSIS:
        await _recover_analysis(app, conn, job, report, max_attempts, on_terminal)
    elif job["task_name"].startswith("bi.maintenance."):
        await job_runs.finish_queue_job(conn, job["id"], "failed")  # the next tick runs anyway
        report.closed.append(job["id"])
    else:
        await job_runs.finish_queue_job(conn, job["id"], "failed")
        await _defer_again(app, conn, job)
        report.closed.append(job["id"])


async def _recover_analysis(
    app: procrastinate.App,
    conn: psycopg.AsyncConnection[Any],
    job: job_runs.Row,
    report: Recovery,
    max_attempts: int,
    on_terminal: progress.OnTerminal | None,
) -> None:
    job_id = _analysis_id(job)
    analysis = await job_runs.lock_analysis(conn, job_id) if job_id else None
    if analysis is None or analysis["status"] in constants.TERMINAL_STATUSES:
        status = _FINISH_FOR.get(analysis["status"], "failed") if analysis else "failed"
        await job_runs.finish_queue_job(conn, job["id"], status)
        report.closed.append(job["id"])
        return
    if analysis["abort_requested_at"] is not None or job["abort_requested"]:
        await _settle(conn, analysis, progress.cancelled(), on_terminal)
        await job_runs.finish_queue_job(conn, job["id"], "aborted")
        report.cancelled.append(str(analysis["id"]))
        return
    if analysis["status"] == "running" and analysis["attempts"] >= max_attempts:
        message = (
            f"The worker running this analysis stopped responding on each of "
            f"{analysis['attempts']} attempts."
        )
        await _settle(conn, analysis, progress.failed("transient_error", message), on_terminal)
        await job_runs.finish_queue_job(conn, job["id"], "failed")
        report.failed.append(str(analysis["id"]))
        return
    if analysis["status"] == "running":
        retry = progress.retrying(analysis["attempts"], 0.0, WORKER_LOST, handed_back=True)
        await _settle(conn, analysis, retry, on_terminal)
    await job_runs.finish_queue_job(conn, job["id"], "failed")
    new_id = await _defer_again(app, conn, job)
    await job_runs.set_queue_job_id(conn, analysis["id"], new_id)
    report.requeued.append(str(analysis["id"]))


async def _adopt(
    app: procrastinate.App,
    conn: psycopg.AsyncConnection[Any],
    analysis: job_runs.Row,
    report: Recovery,
    max_attempts: int,
    on_terminal: progress.OnTerminal | None,
) -> None:
    """An analysis left without a queue job: queue it again, or end it when that is futile."""
    report.orphans.append(str(analysis["id"]))
    if analysis["abort_requested_at"] is not None:
        await _settle(conn, analysis, progress.cancelled(), on_terminal)
        report.cancelled.append(str(analysis["id"]))
        return
    if analysis["attempts"] >= max_attempts or analysis["queue_jobs"] >= 2 * max_attempts:
        message = "The analysis could not be run again after an internal problem."
        await _settle(conn, analysis, progress.failed("internal_error", message), on_terminal)
        report.failed.append(str(analysis["id"]))
        return
    if analysis["status"] == "running":
        retry = progress.retrying(analysis["attempts"], 0.0, WORKER_LOST, handed_back=True)
        await _settle(conn, analysis, retry, on_terminal)
    new_id = await _defer_again(
        app,
        conn,
        {
            "task_name": constants.TASK_RUN_ANALYSIS,
            "queue_name": constants.QUEUE_ANALYSES,
            "priority": constants.PROCRASTINATE_PRIORITY[analysis["priority"]],
            "lock": None,
            "args": {"job_id": str(analysis["id"])},
        },
    )
    await job_runs.set_queue_job_id(conn, analysis["id"], new_id)
    report.requeued.append(str(analysis["id"]))


_SETTLED_STATUS: Final = {"retrying": "queued"}
_SETTLED_STEP: Final = {
    "retrying": progress.STEP_HANDED_BACK,
    "failed": progress.STEP_FAILED,
    "cancelled": progress.STEP_CANCELLED,
}


async def _settle(
    conn: psycopg.AsyncConnection[Any],
    analysis: job_runs.Row,
    change: progress.Change,
    on_terminal: progress.OnTerminal | None,
) -> None:
    """Recovery's version of an attempt's state change: the row is locked, no fence needed."""
    data = change.event["data"]
    error = data.get("error") or {}
    row = await job_runs.settle_analysis(
        conn,
        analysis["id"],
        status=_SETTLED_STATUS.get(change.kind, change.kind),
        step=_SETTLED_STEP[change.kind],
        code=error.get("code") or ("cancelled" if change.kind == "cancelled" else None),
        message=error.get("message") or data.get("message"),
    )
    if row is None:
        return
    await event_log.append(conn, analysis["id"], [change.event])
    if change.terminal and on_terminal is not None and row["callback_url"]:
        await on_terminal(conn, row, change.kind)


async def _defer_again(
    app: procrastinate.App, conn: psycopg.AsyncConnection[Any], job: job_runs.Row
) -> int:
    deferrer = app.configure_task(
        job["task_name"],
        connection=conn,
        queue=job["queue_name"],
        priority=job["priority"],
        lock=job["lock"],
    )
    return int(await deferrer.defer_async(**(job["args"] or {})))


def _analysis_id(job: job_runs.Row) -> uuid.UUID | None:
    try:
        return uuid.UUID(str((job["args"] or {})["job_id"]))
    except (KeyError, ValueError):
        return None


# --------------------------------------------------------------------------- fairness


async def promote_starved(
    pool: psycopg_pool.AsyncConnectionPool[Any],
    settings: Settings,
    *,
    fair_share: int = FAIR_SHARE,
) -> job_runs.Rebalanced:
    """Promote jobs waiting past ``starvation_after_s``; spread each user's burst in tiers."""
    async with pool.connection() as conn, conn.transaction():
        result = await job_runs.rebalance(
            conn,
            task_name=constants.TASK_RUN_ANALYSIS,
            levels=constants.PROCRASTINATE_PRIORITY,
            starved_after_s=settings.starvation_after_s,
            starved_priority=STARVED_PRIORITY,
            per_user=fair_share,
            max_demotion=MAX_DEMOTION,
        )
    if result.promoted:
        log.info("starved_jobs_promoted", promoted=result.promoted, reordered=result.reordered)
    return result


# --------------------------------------------------------------------------- retention


@dataclass(frozen=True, slots=True)
class Pruned:
    queue_jobs: int
    analyses: int


async def prune(
    pool: psycopg_pool.AsyncConnectionPool[Any], settings: Settings, *, batch: int = 5000
) -> Pruned:
    """Delete finished queue jobs after ``job_retention_days``, analyses after theirs."""
    queue_jobs = await _in_batches(
        pool, job_runs.prune_queue_jobs, settings.job_retention_days, batch
    )
    analyses = await _in_batches(
        pool, job_runs.prune_analyses, settings.result_retention_days, batch
    )
    if queue_jobs or analyses:
        log.info("pruned", queue_jobs=queue_jobs, analyses=analyses)
    return Pruned(queue_jobs, analyses)


async def _in_batches(
    pool: psycopg_pool.AsyncConnectionPool[Any], delete: Any, days: int, batch: int
) -> int:
    total = 0
    while True:
        async with pool.connection() as conn, conn.transaction():
            deleted = int(await delete(conn, older_than_days=days, limit=batch))
        total += deleted
        if deleted < batch:
            return total
