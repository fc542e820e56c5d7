"""The ProgressReporter: few transactions, one NOTIFY each, progress on the row, fencing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import procrastinate
import psycopg
import psycopg_pool
import pytest

from bi_engine.db import job_runs
from bi_engine.settings import Settings
from tests.integration.workers import support
from workers import progress

pytestmark = pytest.mark.integration

Conn = psycopg.AsyncConnection[Any]
Pool = psycopg_pool.AsyncConnectionPool[Any]


async def _listener(settings: Settings) -> Conn:
    listener = await psycopg.AsyncConnection.connect(
        settings.require_database_url(), autocommit=True
    )
    await listener.execute('LISTEN "bi_events"')
    return listener


async def _notifies(listener: Conn) -> int:
    return len([n async for n in listener.notifies(timeout=0.3)])


async def test_rapid_progress_becomes_a_few_transactions(
    conn: Conn, app: procrastinate.App, settings: Settings, pool: Pool
) -> None:
    job_id = await support.submit_job(conn, app, settings)
    listener = await _listener(settings)
    reporter = progress.ProgressReporter(pool, job_id, 1, interval_s=0.1)
    try:
        reporter.begin()
        started = time.monotonic()
        for i in range(100):  # ~1 s of progress, 100 calls, two steps
            step = "Reading" if i < 50 else "Analysing"
            await reporter.progress(i, step, f"item {i}", "Data Intelligence Specialist")
            await asyncio.sleep(0.01)
            if i == 60:
                mid = await support.row(conn, job_id)
        await reporter.flush()
        elapsed = time.monotonic() - started
        flushed = reporter.flushes
        notified = await _notifies(listener)
    finally:
        await reporter.close()
        await listener.close()

    assert flushed <= elapsed / 0.1 + 2  # at most one flush per interval
    assert flushed >= 5
    assert notified == flushed  # one NOTIFY per transaction
    assert mid["status"] == "running"
    assert 45 <= mid["progress"] <= 60  # the row follows the flushes
    found = await support.row(conn, job_id)
    assert (found["progress"], found["current_step"]) == (99, "Analysing")
    log = await support.events(conn, job_id)
    support.assert_gap_free(log)
    steps = [e["data"]["step"] for e in log if e["kind"] == "progress"]
    assert steps[0] == "Reading"
    assert steps[-1] == "Analysing"
    assert len(steps) <= flushed + 1  # a step's rapid updates coalesce within a flush
    assert log[-1]["data"]["progress"] == 99


async def test_a_state_change_carries_what_was_pending_before_its_event(
    conn: Conn, app: procrastinate.App, settings: Settings, pool: Pool
) -> None:
    job_id = await support.submit_job(conn, app, settings)
    listener = await _listener(settings)
    reporter = progress.ProgressReporter(pool, job_id, 1, interval_s=10)
    try:
        reporter.begin()
        await reporter.progress(40, "Reading", "half way")
        ended = await reporter.finish(progress.failed("invalid_data", "no rows"))
        notified = await _notifies(listener)
    finally:
        await listener.close()
    assert ended is not None
    assert ended["status"] == "failed"
    assert notified == 1
    assert support.kinds(await support.events(conn, job_id)) == [
        "status:queued",
        "status:running",
        "progress",
        "failed",
    ]


async def test_a_reporter_that_lost_its_attempt_writes_nothing(
    conn: Conn, app: procrastinate.App, settings: Settings, pool: Pool
) -> None:
    job_id = await support.submit_job(conn, app, settings)
    first = progress.ProgressReporter(pool, job_id, 1, interval_s=0.05)
    second = progress.ProgressReporter(pool, job_id, 1, interval_s=0.05)
    first.begin()
    await first.flush()
    second.begin()
    await second.progress(10, "Reading", "late")
    await asyncio.sleep(0.2)
    with pytest.raises(progress.AttemptLost):
        await second.progress(20, "Reading", "later")
    assert await second.finish(progress.cancelled()) is None
    assert support.kinds(await support.events(conn, job_id)) == ["status:queued", "status:running"]
    assert (await first.finish(progress.failed("timeout", "slow"))) is not None
    await first.close()
    await second.close()


async def test_the_fence_refuses_a_write_for_another_attempt(
    conn: Conn, app: procrastinate.App, settings: Settings
) -> None:
    job_id = await support.submit_job(conn, app, settings)
    fence = job_runs.Fence(2, started=False)  # attempt 1 never ran: 2 is not next
    assert await job_runs.mark_running(conn, job_id, fence, elapsed_s=0) is None
    assert await job_runs.mark_running(conn, job_id, job_runs.Fence(1, False), elapsed_s=0)
    assert await job_runs.mark_running(conn, job_id, job_runs.Fence(1, False), elapsed_s=0) is None
    assert await job_runs.mark_running(conn, job_id, job_runs.Fence(1, True), elapsed_s=0)
