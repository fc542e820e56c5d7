"""The pipeline in-process on a real database: outcomes, retries, deadline, abort, fencing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import procrastinate
import psycopg
import pytest

from bi_engine import control
from bi_engine.settings import Settings
from tests.integration.workers import support
from workers import pipeline

pytestmark = pytest.mark.integration

Conn = psycopg.AsyncConnection[Any]
HOOK_URL = "http://backend-dev:3001/hooks/bi"


async def test_a_quick_job_completes_with_its_whole_log_in_one_notify(
    conn: Conn, app: procrastinate.App, settings: Settings, deps: pipeline.Deps
) -> None:
    job_id = await support.submit_job(conn, app, settings, data={"note": "hello"})
    listener = await psycopg.AsyncConnection.connect(
        settings.require_database_url(), autocommit=True
    )
    await listener.execute('LISTEN "bi_events"')
    try:
        outcome = await pipeline.run_analysis(deps, job_id)
        notifies = await _drain(listener)
    finally:
        await listener.close()

    assert outcome.kind == "completed"
    found = await support.row(conn, job_id)
    assert (found["status"], found["attempts"], found["progress"]) == ("completed", 1, 100)
    assert found["started_at"] is not None
    assert found["finished_at"] >= found["started_at"]
    assert found["result"]["analysis"]["summary"]["headline"].startswith("Smoke test")
    log = await support.events(conn, job_id)
    support.assert_gap_free(log)
    assert support.kinds(log) == [
        "status:queued",
        "status:running",
        "progress",
        "progress",
        "completed",
    ]
    assert log[-1]["data"]["result_url"] == f"/api/business-intelligence/jobs/{job_id}/result"
    # the start, the progress and the end of a job that finished within one flush interval
    # travel in a single transaction: one NOTIFY
    assert len(notifies) == 1


async def test_unknown_runner_fails_with_unsupported_type(
    conn: Conn, app: procrastinate.App, settings: Settings, deps: pipeline.Deps
) -> None:
    job_id = await support.submit_job(
        conn, app, settings, type="trend_analysis", data={"series": []}
    )
    outcome = await pipeline.run_analysis(deps, job_id)
    assert (outcome.kind, outcome.code) == ("failed", "unsupported_type")
    found = await support.row(conn, job_id)
    assert (found["status"], found["error_code"], found["attempts"]) == (
        "failed",
        "unsupported_type",
        1,
    )
    assert found["result"] is None


async def test_bad_data_fails_at_once_without_retry(
    conn: Conn, app: procrastinate.App, settings: Settings, deps: pipeline.Deps
) -> None:
    job_id = await support.submit_job(conn, app, settings, data={"sleep_s": "soon"})
    outcome = await pipeline.run_analysis(deps, job_id)
    assert (outcome.kind, outcome.code) == ("failed", "invalid_data")
    log = await support.events(conn, job_id)
    assert support.kinds(log) == ["status:queued", "status:running", "failed"]
    assert log[-1]["data"]["error"] == {
        "code": "invalid_data",
        "message": "data.sleep_s: must be a number of seconds",
    }


async def test_transient_failure_goes_back_to_queued_then_succeeds(
    conn: Conn, app: procrastinate.App, settings: Settings, deps: pipeline.Deps
) -> None:
    job_id = await support.submit_job(conn, app, settings, data={"fail_attempts": 1})
    first = await pipeline.run_analysis(deps, job_id)
    assert first.kind == "retrying"
    assert 1.5 <= first.retry_in_s <= 2.5
    waiting = await support.row(conn, job_id)
    assert (waiting["status"], waiting["attempts"]) == ("queued", 1)
    retrying = (await support.events(conn, job_id))[-1]
    assert retrying["data"] == {
        "status": "retrying",
        "attempt": 1,
        "retry_in_s": first.retry_in_s,
        "reason": "Simulated temporary failure on attempt 1 of 1 planned.",
    }

    second = await pipeline.run_analysis(deps, job_id)
    assert second.kind == "completed"
    log = await support.events(conn, job_id)
    support.assert_gap_free(log)
    assert [e["data"].get("attempt") for e in log if e["kind"] == "status"] == [None, 1, 1, 2]
    assert (await support.row(conn, job_id))["attempts"] == 2


async def test_transient_failures_give_up_after_three_attempts(
    conn: Conn, app: procrastinate.App, settings: Settings, deps: pipeline.Deps
) -> None:
    job_id = await support.submit_job(conn, app, settings, data={"fail_attempts": 9})
    kinds = [(await pipeline.run_analysis(deps, job_id)).kind for _ in range(3)]
    assert kinds == ["retrying", "retrying", "failed"]
    found = await support.row(conn, job_id)
    assert (found["status"], found["error_code"], found["attempts"]) == (
        "failed",
        "transient_error",
        3,
    )
    assert "gave up after 3 attempts" in found["error_message"]
    assert (await pipeline.run_analysis(deps, job_id)).kind == "skipped"


async def test_the_deadline_stops_a_long_step_with_timeout(
    conn: Conn, app: procrastinate.App, settings: Settings, deps: pipeline.Deps
) -> None:
    short = pipeline.Deps(
        settings=settings.model_copy(update={"job_timeout_s": 0.5}),
        pool=deps.pool,
        registry=deps.registry,
        watch_interval_s=5.0,  # the deadline does not wait for the next poll
    )
    job_id = await support.submit_job(conn, app, settings, data={"sleep_s": 30})
    started = time.monotonic()
    outcome = await pipeline.run_analysis(short, job_id)
    assert (outcome.kind, outcome.code) == ("failed", "timeout")
    assert time.monotonic() - started < 2.0
    found = await support.row(conn, job_id)
    assert (found["status"], found["error_code"]) == ("failed", "timeout")
    assert "0.5 s time limit" in found["error_message"]


async def test_a_cancel_reaches_a_running_job_within_the_watch_interval(
    conn: Conn, app: procrastinate.App, settings: Settings, deps: pipeline.Deps
) -> None:
    job_id = await support.submit_job(conn, app, settings, data={"sleep_s": 30})
    await _claim_queue_job(app)  # as a worker would: procrastinate's job is 'doing'
    run = asyncio.ensure_future(pipeline.run_analysis(deps, job_id))
    await support.wait_status(conn, job_id, "running", timeout=5)
    asked = time.monotonic()
    cancelled = await control.cancel(conn, app, job_id, control.Actor())
    assert cancelled.outcome == "abort_requested"
    outcome = await asyncio.wait_for(run, timeout=5)
    assert outcome.kind == "cancelled"
    assert time.monotonic() - asked < 2.0
    log = await support.events(conn, job_id)
    support.assert_gap_free(log)
    assert log[-1]["kind"] == "cancelled"
    assert support.terminal_count(log) == 1
    assert (await support.row(conn, job_id))["status"] == "cancelled"


async def test_an_abort_requested_before_the_start_ends_the_job_at_once(
    conn: Conn, app: procrastinate.App, settings: Settings, deps: pipeline.Deps
) -> None:
    job_id = await support.submit_job(conn, app, settings, data={"sleep_s": 30})
    await _claim_queue_job(app)
    await control.cancel(conn, app, job_id, control.Actor())  # still 'queued' on the row
    outcome = await pipeline.run_analysis(deps, job_id)
    assert outcome.kind == "cancelled"
    assert support.kinds(await support.events(conn, job_id)) == [
        "status:queued",
        "status:running",
        "cancelled",
    ]


async def test_two_executions_of_one_attempt_complete_it_once(
    conn: Conn, app: procrastinate.App, settings: Settings, deps: pipeline.Deps
) -> None:
    job_id = await support.submit_job(conn, app, settings, data={"sleep_s": 1.2})
    outcomes = await asyncio.gather(
        pipeline.run_analysis(deps, job_id), pipeline.run_analysis(deps, job_id)
    )
    assert sorted(o.kind for o in outcomes) == ["completed", "superseded"]
    log = await support.events(conn, job_id)
    support.assert_gap_free(log)
    assert support.kinds(log).count("status:running") == 1
    assert support.terminal_count(log) == 1


async def test_a_shutdown_hands_the_job_back_as_queued(
    conn: Conn, app: procrastinate.App, settings: Settings, deps: pipeline.Deps
) -> None:
    job_id = await support.submit_job(conn, app, settings, data={"sleep_s": 30})
    queue = pipeline.QueueContext(is_shutdown=lambda: True)
    run = asyncio.ensure_future(pipeline.run_analysis(deps, job_id, queue))
    await support.wait_status(conn, job_id, "running", timeout=5)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    found = await support.row(conn, job_id)
    assert (found["status"], found["attempts"], found["finished_at"]) == ("queued", 1, None)
    last = (await support.events(conn, job_id))[-1]["data"]
    assert last == {
        "status": "retrying",
        "attempt": 1,
        "retry_in_s": 0.0,
        "reason": "worker_shutdown",
    }


async def test_a_queue_abort_while_running_ends_cancelled(
    conn: Conn, app: procrastinate.App, settings: Settings, deps: pipeline.Deps
) -> None:
    job_id = await support.submit_job(conn, app, settings, data={"sleep_s": 30})
    queue = pipeline.QueueContext(is_shutdown=lambda: False)
    run = asyncio.ensure_future(pipeline.run_analysis(deps, job_id, queue))
    await support.wait_status(conn, job_id, "running", timeout=5)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert (await support.row(conn, job_id))["status"] == "cancelled"


async def test_the_terminal_hook_runs_inside_the_final_transaction(
    conn: Conn, app: procrastinate.App, settings: Settings, deps: pipeline.Deps
) -> None:
    seen: list[tuple[str, str, str]] = []

    async def hook(db: Conn, ended: dict[str, Any], kind: str) -> None:
        cursor = await db.execute("SELECT status FROM analyses WHERE id = %s", (ended["id"],))
        found = await cursor.fetchone()
        assert found is not None
        status = found["status"]
        seen.append((str(ended["id"]), kind, status))

    hooked = pipeline.Deps(
        settings=settings, pool=deps.pool, registry=deps.registry, on_terminal=hook
    )
    job_id = await support.submit_job(conn, app, settings, callback_url=HOOK_URL)
    silent = await support.submit_job(conn, app, settings)
    assert (await pipeline.run_analysis(hooked, job_id)).kind == "completed"
    assert (await pipeline.run_analysis(hooked, silent)).kind == "completed"
    assert seen == [(str(job_id), "completed", "completed")]  # only jobs with a callback_url


async def test_a_failing_terminal_hook_never_strands_the_job(
    conn: Conn, app: procrastinate.App, settings: Settings, deps: pipeline.Deps
) -> None:
    async def broken(db: Conn, ended: dict[str, Any], kind: str) -> None:
        raise RuntimeError("callback queue unavailable")

    hooked = pipeline.Deps(
        settings=settings, pool=deps.pool, registry=deps.registry, on_terminal=broken
    )
    job_id = await support.submit_job(conn, app, settings, callback_url=HOOK_URL)
    assert (await pipeline.run_analysis(hooked, job_id)).kind == "completed"
    assert (await support.row(conn, job_id))["status"] == "completed"


async def _claim_queue_job(app: procrastinate.App) -> None:
    worker_id = await app.job_manager.register_worker()
    job = await app.job_manager.fetch_job(queues=None, worker_id=worker_id)
    assert job is not None


async def _drain(listener: psycopg.AsyncConnection[Any]) -> list[Any]:
    found = []
    gen = listener.notifies(timeout=0.3)
    async for notify in gen:
        found.append(notify)
    return found
