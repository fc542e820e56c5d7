"""Maintenance on a real database: stalled-job recovery, orphans, fairness, retention."""

from __future__ import annotations

import uuid
from typing import Any

import procrastinate
import psycopg
import psycopg_pool
import pytest

from bi_engine.db import events as event_log
from bi_engine.db import job_runs
from bi_engine.settings import Settings
from tests.integration.workers import support
from workers import maintenance, pipeline

pytestmark = pytest.mark.integration

Conn = psycopg.AsyncConnection[Any]
Pool = psycopg_pool.AsyncConnectionPool[Any]


async def _running_on_dead_worker(conn: Conn, app: procrastinate.App, job_id: uuid.UUID) -> int:
    """The state a ``kill -9`` leaves: queue job 'doing' on a silent worker, row 'running'."""
    worker_id = await app.job_manager.register_worker()
    await conn.execute(
        "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour' WHERE id = %s",
        (worker_id,),
    )
    job = await app.job_manager.fetch_job(queues=None, worker_id=worker_id)
    assert job is not None
    async with conn.transaction():
        claimed = await job_runs.mark_running(
            conn, job_id, job_runs.Fence(1, started=False), elapsed_s=0.0, step="Analysing"
        )
        assert claimed is not None
        await event_log.append(
            conn, job_id, [{"kind": "status", "data": {"status": "running", "attempt": 1}}]
        )
    assert job.id is not None
    return job.id


async def test_a_job_of_a_dead_worker_runs_again_exactly_once(
    conn: Conn, app: procrastinate.App, settings: Settings, pool: Pool, deps: pipeline.Deps
) -> None:
    job_id = await support.submit_job(conn, app, settings, priority="high")
    stale = await _running_on_dead_worker(conn, app, job_id)

    report = await maintenance.recover_stalled(app, pool, settings, max_attempts=3)

    assert report.requeued == [str(job_id)]
    assert (await support.row(conn, job_id))["status"] == "queued"
    queue_jobs = await support.queue_jobs(conn, job_id)
    assert next((j["id"], j["status"]) for j in queue_jobs) == (stale, "failed")
    fresh = queue_jobs[1]
    assert (fresh["status"], fresh["priority"]) == ("todo", 20)
    assert (await support.row(conn, job_id))["procrastinate_job_id"] == fresh["id"]
    assert (await maintenance.recover_stalled(app, pool, settings, max_attempts=3)).requeued == []

    assert (await pipeline.run_analysis(deps, job_id)).kind == "completed"
    log = await support.events(conn, job_id)
    support.assert_gap_free(log)
    assert support.kinds(log) == [
        "status:queued",
        "status:running",
        "status:retrying",
        "status:running",
        "progress",
        "progress",
        "completed",
    ]
    assert log[2]["data"] == {
        "status": "retrying",
        "attempt": 1,
        "retry_in_s": 0.0,
        "reason": "worker_lost",
    }
    assert (await support.row(conn, job_id))["attempts"] == 2


async def test_a_job_whose_workers_keep_dying_fails_after_the_last_attempt(
    conn: Conn, app: procrastinate.App, settings: Settings, pool: Pool
) -> None:
    job_id = await support.submit_job(conn, app, settings)
    await _running_on_dead_worker(conn, app, job_id)
    report = await maintenance.recover_stalled(app, pool, settings, max_attempts=1)
    assert report.failed == [str(job_id)]
    found = await support.row(conn, job_id)
    assert (found["status"], found["error_code"]) == ("failed", "transient_error")
    assert found["finished_at"] is not None
    assert (await support.events(conn, job_id))[-1]["kind"] == "failed"


async def test_a_dead_workers_job_that_was_being_cancelled_ends_cancelled(
    conn: Conn, app: procrastinate.App, settings: Settings, pool: Pool
) -> None:
    job_id = await support.submit_job(conn, app, settings)
    stale = await _running_on_dead_worker(conn, app, job_id)
    await conn.execute("UPDATE analyses SET abort_requested_at = now() WHERE id = %s", (job_id,))
    report = await maintenance.recover_stalled(app, pool, settings, max_attempts=3)
    assert report.cancelled == [str(job_id)]
    assert (await support.row(conn, job_id))["status"] == "cancelled"
    assert [(j["id"], j["status"]) for j in await support.queue_jobs(conn, job_id)] == [
        (stale, "aborted")
    ]


async def test_a_finished_analysis_only_closes_its_queue_job(
    conn: Conn, app: procrastinate.App, settings: Settings, pool: Pool, deps: pipeline.Deps
) -> None:
    job_id = await support.submit_job(conn, app, settings)
    worker_id = await app.job_manager.register_worker()
    await conn.execute(
        "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"
    )
    assert await app.job_manager.fetch_job(queues=None, worker_id=worker_id) is not None
    assert (await pipeline.run_analysis(deps, job_id)).kind == "completed"  # then it died
    before = await support.events(conn, job_id)

    report = await maintenance.recover_stalled(app, pool, settings, max_attempts=3)

    assert report.requeued == []
    assert len(report.closed) == 1
    assert [j["status"] for j in await support.queue_jobs(conn, job_id)] == ["succeeded"]
    assert await support.events(conn, job_id) == before


async def test_jobs_of_live_workers_are_left_alone(
    conn: Conn, app: procrastinate.App, settings: Settings, pool: Pool
) -> None:
    job_id = await support.submit_job(conn, app, settings)
    worker_id = await app.job_manager.register_worker()
    assert await app.job_manager.fetch_job(queues=None, worker_id=worker_id) is not None
    report = await maintenance.recover_stalled(app, pool, settings, max_attempts=3)
    assert not report
    assert [j["status"] for j in await support.queue_jobs(conn, job_id)] == ["doing"]


async def test_an_analysis_left_without_a_queue_job_is_queued_again(
    conn: Conn, app: procrastinate.App, settings: Settings, pool: Pool
) -> None:
    job_id = await support.submit_job(conn, app, settings)
    stale = await _running_on_dead_worker(conn, app, job_id)
    await app.job_manager.finish_job_by_id_async(stale, procrastinate.jobs.Status.FAILED, False)
    await conn.execute(
        "UPDATE analyses SET updated_at = now() - interval '1 hour' WHERE id = %s", (job_id,)
    )
    report = await maintenance.recover_stalled(app, pool, settings, max_attempts=3)
    assert (report.orphans, report.requeued) == ([str(job_id)], [str(job_id)])
    assert (await support.row(conn, job_id))["status"] == "queued"
    assert [j["status"] for j in await support.queue_jobs(conn, job_id)] == ["failed", "todo"]


async def test_bursts_are_served_in_tiers_and_starved_jobs_go_first(
    conn: Conn, app: procrastinate.App, settings: Settings, pool: Pool
) -> None:
    burst = [await support.submit_job(conn, app, settings, user="alice") for _ in range(6)]
    bob = await support.submit_job(conn, app, settings, user="bob")
    old_low = await support.submit_job(conn, app, settings, user="carol", priority="low")
    await conn.execute(
        "UPDATE analyses SET queued_at = now() - interval '1 hour' WHERE id = %s", (old_low,)
    )

    result = await maintenance.promote_starved(
        pool, settings.model_copy(update={"starvation_after_s": 60}), fair_share=2
    )

    assert (result.promoted, result.reordered) == (1, 4)
    worker_id = await app.job_manager.register_worker()
    order = []
    while job := await app.job_manager.fetch_job(queues=["analyses"], worker_id=worker_id):
        order.append(uuid.UUID(str(job.task_kwargs["job_id"])))
    assert order == [old_low, burst[0], burst[1], bob, *burst[2:]]
    priorities = [j["priority"] for j in [(await support.queue_jobs(conn, b))[0] for b in burst]]
    assert priorities == [10, 10, 9, 9, 8, 8]


async def test_retention_prunes_old_queue_jobs_and_old_analyses(
    conn: Conn, app: procrastinate.App, settings: Settings, pool: Pool, deps: pipeline.Deps
) -> None:
    old, recent, waiting = [await support.submit_job(conn, app, settings) for _ in range(3)]
    worker_id = await app.job_manager.register_worker()
    for job_id in (old, recent):
        queue_job = await app.job_manager.fetch_job(queues=None, worker_id=worker_id)
        assert queue_job is not None
        assert (await pipeline.run_analysis(deps, job_id)).kind == "completed"
        await app.job_manager.finish_job(queue_job, procrastinate.jobs.Status.SUCCEEDED, False)
    old_queue_job = (await support.queue_jobs(conn, old))[0]["id"]
    await conn.execute(
        "UPDATE procrastinate_events SET at = now() - interval '30 days' WHERE job_id = %s",
        (old_queue_job,),
    )
    await conn.execute(
        "UPDATE analyses SET created_at = now() - interval '400 days',"
        " started_at = now() - interval '400 days', finished_at = now() - interval '400 days'"
        " WHERE id = %s",
        (old,),
    )

    pruned = await maintenance.prune(pool, settings)

    assert (pruned.queue_jobs, pruned.analyses) == (1, 1)
    assert await support.statuses(conn, [old, recent, waiting]) == {
        recent: "completed",
        waiting: "queued",
    }
    assert await support.events(conn, old) == []
    assert len(await support.queue_jobs(conn, recent)) == 1
