"""The engine's procrastinate tasks: thin, each delegating to its service.

``app.py`` registers them under their stable dotted names. Their shared resources (pool,
settings, runner registry) arrive in procrastinate's ``additional_context["engine"]``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import procrastinate
from procrastinate import exceptions as procrastinate_errors
from procrastinate.job_context import AbortReason

from workers import callbacks, maintenance, pipeline, retry

CONTEXT_KEY = "engine"


@dataclass(frozen=True, slots=True)
class Engine:
    """What the tasks of one worker process share."""

    app: procrastinate.App
    deps: pipeline.Deps
    fair_share: int = maintenance.FAIR_SHARE


def engine_of(context: procrastinate.JobContext) -> Engine:
    engine: Engine = context.additional_context[CONTEXT_KEY]
    return engine


async def run_analysis(context: procrastinate.JobContext, job_id: str) -> None:
    """``bi.run_analysis``: one attempt; the outcome tells procrastinate what comes next."""
    queue = pipeline.QueueContext(
        should_abort=lambda: context.abort_reason() == AbortReason.USER_REQUEST,
        is_shutdown=lambda: context.abort_reason() != AbortReason.USER_REQUEST,
    )
    try:
        outcome = await pipeline.run_analysis(engine_of(context).deps, uuid.UUID(job_id), queue)
    except asyncio.CancelledError:
        if context.abort_reason() == AbortReason.USER_REQUEST:
            # ended ``cancelled`` already; JobAborted makes procrastinate record 'aborted'
            # instead of asking the retry strategy (which hands back shutdown aborts)
            raise procrastinate_errors.JobAborted from None
        raise
    if outcome.kind == "retrying":
        raise retry.RetryLater(outcome.retry_in_s, outcome.code or "transient_error")
    if outcome.kind == "failed":
        raise retry.JobFailed(outcome.code or "internal_error")
    if outcome.kind == "cancelled":
        raise procrastinate_errors.JobAborted


async def deliver_callback(
    context: procrastinate.JobContext, job_id: str, event: str, attempt: int = 1
) -> None:
    """``bi.deliver_callback``: one signed delivery attempt (it defers the next on failure)."""
    engine = engine_of(context)
    async with engine.deps.pool.connection() as conn:
        outcome = await callbacks.deliver(
            engine.deps.settings, engine.app, conn, job_id, event, attempt
        )
    if engine.deps.observer is not None:
        engine.deps.observer.callback_attempted(outcome.status)


async def recover_stalled(context: procrastinate.JobContext, timestamp: int) -> None:
    """``bi.maintenance.recover_stalled``: run again the jobs of workers that went silent."""
    engine = engine_of(context)
    deps = engine.deps
    await maintenance.recover_stalled(
        engine.app,
        deps.pool,
        deps.settings,
        max_attempts=deps.max_attempts,
        on_terminal=deps.on_terminal,
    )


async def promote_starved(context: procrastinate.JobContext, timestamp: int) -> None:
    """``bi.maintenance.promote_starved``: bounded waiting and per-user fairness."""
    engine = engine_of(context)
    await maintenance.promote_starved(
        engine.deps.pool, engine.deps.settings, fair_share=engine.fair_share
    )


async def prune(context: procrastinate.JobContext, timestamp: int) -> None:
    """``bi.maintenance.prune``: retention of queue jobs and of analyses."""
    deps = engine_of(context).deps
    await maintenance.prune(deps.pool, deps.settings)
