"""``bi-engine worker`` processes end to end: run, order, crash, deploy, deadline, cancel,
retries, starvation and fairness. Each test starts its own workers on a fresh database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import procrastinate
import psycopg
import pytest

from bi_engine import control
from bi_engine.settings import Settings
from tests.acceptance.workers.conftest import WorkerProcess, live_workers
from tests.integration.workers import support

pytestmark = pytest.mark.acceptance

Conn = psycopg.AsyncConnection[Any]
Start = Callable[..., WorkerProcess]


async def _wait_ready(conn: Conn, processes: int) -> None:
    """Each process registers two procrastinate workers: the job lane and maintenance."""

    async def ready() -> bool:
        return await live_workers(conn) >= 2 * processes

    await support.wait_until(ready, timeout=30, what="workers to register")


async def _start_order(conn: Conn, job_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    cursor = await conn.execute(
        "SELECT id FROM analyses WHERE id = ANY(%s) ORDER BY started_at", (job_ids,)
    )
    return [r["id"] for r in await cursor.fetchall()]


async def _all_done(conn: Conn, job_ids: list[uuid.UUID], *, timeout: float) -> None:
    async def done() -> bool:
        found = await support.statuses(conn, job_ids)
        return all(s in ("completed", "failed", "cancelled") for s in found.values())

    await support.wait_until(done, timeout=timeout, interval=0.2, what="jobs to finish")


async def test_twenty_jobs_all_complete_once(
    conn: Conn, app: procrastinate.App, settings: Settings, start_worker: Start
) -> None:
    job_ids = [
        await support.submit_job(conn, app, settings, data={"sleep_s": (i % 4) / 10})
        for i in range(20)
    ]
    start_worker("--concurrency", "4")
    start_worker("--concurrency", "4")
    await _all_done(conn, job_ids, timeout=60)

    assert set((await support.statuses(conn, job_ids)).values()) == {"completed"}
    for job_id in job_ids:
        log = await support.events(conn, job_id)
        support.assert_gap_free(log)
        kinds = support.kinds(log)
        assert kinds[:2] == ["status:queued", "status:running"]
        assert (kinds.count("status:running"), kinds[-1]) == (1, "completed")
        assert (await support.row(conn, job_id))["attempts"] == 1
        assert [j["status"] for j in await support.settled_queue_jobs(conn, job_id)] == [
            "succeeded"
        ]


async def test_one_slot_takes_jobs_by_priority_then_age(
    conn: Conn, app: procrastinate.App, settings: Settings, start_worker: Start
) -> None:
    plan = ["normal", "low", "high", "normal", "high", "low", "normal", "high"]
    job_ids = [
        await support.submit_job(conn, app, settings, priority=p, data={"sleep_s": 0.05})
        for p in plan
    ]
    rank = {"high": 0, "normal": 1, "low": 2}
    expected = [job_ids[i] for i in sorted(range(len(plan)), key=lambda i: (rank[plan[i]], i))]
    start_worker("--concurrency", "1")
    await _all_done(conn, job_ids, timeout=30)
    assert await _start_order(conn, job_ids) == expected


@pytest.mark.slow
async def test_a_job_whose_worker_is_killed_completes_once_on_another(
    conn: Conn, app: procrastinate.App, settings: Settings, start_worker: Start
) -> None:
    job_id = await support.submit_job(conn, app, settings, data={"sleep_s": 3})
    doomed = start_worker("--concurrency", "1")
    await support.wait_event(
        conn,
        job_id,
        lambda e: e["kind"] == "progress" and e["data"]["step"] == "Analysing",
        timeout=30,
    )
    doomed.kill()
    doomed.wait(5)
    start_worker("--concurrency", "1")

    found = await support.wait_status(conn, job_id, "completed", timeout=40)

    assert found["attempts"] == 2
    log = await support.events(conn, job_id)
    support.assert_gap_free(log)
    kinds = support.kinds(log)
    assert support.terminal_count(log) == 1
    assert kinds.count("status:running") == 2
    retry = next(e["data"] for e in log if support.kinds([e]) == ["status:retrying"])
    assert retry == {"status": "retrying", "attempt": 1, "retry_in_s": 0.0, "reason": "worker_lost"}
    assert kinds.index("status:retrying") < len(kinds) - 1 - kinds[::-1].index("status:running")
    queue_jobs = await support.settled_queue_jobs(conn, job_id)
    assert [j["status"] for j in queue_jobs] == ["failed", "succeeded"]


async def test_sigterm_hands_back_a_job_that_outlasts_the_grace_period(
    conn: Conn, app: procrastinate.App, settings: Settings, start_worker: Start
) -> None:
    job_id = await support.submit_job(conn, app, settings, data={"sleep_s": 30})
    first = start_worker("--concurrency", "1", "--shutdown-grace", "0.5")
    await support.wait_status(conn, job_id, "running", timeout=30)
    first.terminate()
    assert first.wait(15) == 0

    found = await support.row(conn, job_id)
    assert (found["status"], found["attempts"], found["current_step"]) == (
        "queued",
        1,
        "Waiting for an available AI Team",
    )
    assert (await support.events(conn, job_id))[-1]["data"]["reason"] == "worker_shutdown"
    assert [j["status"] for j in await support.queue_jobs(conn, job_id)] == ["todo"]
    cursor = await conn.execute("SELECT count(*) AS n FROM analyses WHERE status = 'running'")
    assert await cursor.fetchone() == {"n": 0}

    await conn.execute(
        "UPDATE analysis_inputs SET data = '{\"sleep_s\": 0.2}' WHERE job_id = %s", (job_id,)
    )
    start_worker("--concurrency", "1")
    found = await support.wait_status(conn, job_id, "completed", timeout=30)
    assert found["attempts"] == 2


async def test_sigterm_lets_a_short_job_finish_and_claims_nothing_more(
    conn: Conn, app: procrastinate.App, settings: Settings, start_worker: Start
) -> None:
    running = await support.submit_job(conn, app, settings, data={"sleep_s": 1.5})
    waiting = await support.submit_job(conn, app, settings, data={"sleep_s": 0})
    worker = start_worker("--concurrency", "1", "--shutdown-grace", "10")
    await support.wait_status(conn, running, "running", timeout=30)
    worker.terminate()
    assert worker.wait(15) == 0
    assert await support.statuses(conn, [running, waiting]) == {
        running: "completed",
        waiting: "queued",
    }


async def test_a_job_past_its_deadline_fails_with_timeout(
    conn: Conn, app: procrastinate.App, settings: Settings, start_worker: Start
) -> None:
    job_id = await support.submit_job(conn, app, settings, data={"sleep_s": 30})
    start_worker("--concurrency", "1", env={"BI_JOB_TIMEOUT_S": "1"})
    found = await support.wait_status(conn, job_id, "failed", timeout=30)
    assert found["error_code"] == "timeout"
    assert (found["finished_at"] - found["started_at"]).total_seconds() < 2.5
    assert found["attempts"] == 1
    assert (await support.events(conn, job_id))[-1]["data"]["error"]["code"] == "timeout"
    assert [j["status"] for j in await support.settled_queue_jobs(conn, job_id)] == ["failed"]


async def test_cancel_a_queued_job_at_once_and_a_running_one_within_two_seconds(
    conn: Conn, app: procrastinate.App, settings: Settings, start_worker: Start
) -> None:
    long = await support.submit_job(conn, app, settings, data={"sleep_s": 30})
    queued = await support.submit_job(conn, app, settings, data={"sleep_s": 0})
    start_worker("--concurrency", "1")
    await support.wait_status(conn, long, "running", timeout=30)

    assert (await control.cancel(conn, app, queued, control.Actor())).outcome == "cancelled"
    assert (await support.row(conn, queued))["status"] == "cancelled"
    asked = time.monotonic()
    assert (await control.cancel(conn, app, long, control.Actor())).outcome == "abort_requested"
    await support.wait_status(conn, long, "cancelled", timeout=5)
    assert time.monotonic() - asked < 2.0

    await asyncio.sleep(0.5)
    assert "status:running" not in support.kinds(await support.events(conn, queued))
    for job_id in (long, queued):
        log = await support.events(conn, job_id)
        support.assert_gap_free(log)
        assert (log[-1]["kind"], support.terminal_count(log)) == ("cancelled", 1)
    assert [j["status"] for j in await support.settled_queue_jobs(conn, long)] == ["aborted"]
    assert [j["status"] for j in await support.settled_queue_jobs(conn, queued)] == ["cancelled"]


@pytest.mark.slow
async def test_transient_failures_are_retried_with_backoff_and_bad_data_is_not(
    conn: Conn, app: procrastinate.App, settings: Settings, start_worker: Start
) -> None:
    flaky = await support.submit_job(conn, app, settings, data={"fail_attempts": 2})
    broken = await support.submit_job(conn, app, settings, data={"sleep_s": "soon"})
    start_worker("--concurrency", "2")

    found = await support.wait_status(conn, flaky, "completed", timeout=40)
    assert found["attempts"] == 3
    log = await support.events(conn, flaky)
    support.assert_gap_free(log)
    statuses = [e for e in log if e["kind"] == "status"]
    retries = [e for e in statuses if e["data"]["status"] == "retrying"]
    assert [r["data"]["attempt"] for r in retries] == [1, 2]
    first, second = (r["data"]["retry_in_s"] for r in retries)
    assert 1.5 <= first <= 2.5
    assert 3.0 <= second <= 5.0
    for retry in retries:
        after = next(e for e in statuses if e["seq"] > retry["seq"])
        assert after["data"]["status"] == "running"
        waited = (after["created_at"] - retry["created_at"]).total_seconds()
        assert waited >= retry["data"]["retry_in_s"] - 0.05

    failed = await support.wait_status(conn, broken, "failed", timeout=10)
    assert (failed["error_code"], failed["attempts"]) == ("invalid_data", 1)
    assert support.kinds(await support.events(conn, broken)) == [
        "status:queued",
        "status:running",
        "failed",
    ]
    assert [j["status"] for j in await support.settled_queue_jobs(conn, broken)] == ["failed"]


@pytest.mark.slow
async def test_a_low_priority_job_is_promoted_once_it_waited_too_long(
    conn: Conn, app: procrastinate.App, settings: Settings, start_worker: Start
) -> None:
    low = await support.submit_job(
        conn, app, settings, priority="low", user="lo", data={"sleep_s": 0.1}
    )
    high = [
        await support.submit_job(
            conn, app, settings, priority="high", user="hi", data={"sleep_s": 0.5}
        )
        for _ in range(12)
    ]
    start_worker("--concurrency", "1", env={"BI_STARVATION_AFTER_S": "1"})
    await _all_done(conn, [low, *high], timeout=40)
    order = await _start_order(conn, [low, *high])
    assert order.index(low) <= 5  # without promotion it would start last (12)
    found = await support.row(conn, low)
    assert (found["started_at"] - found["queued_at"]).total_seconds() < 5.0  # else >= 6 s


@pytest.mark.slow
async def test_one_users_burst_does_not_hold_back_another_user(
    conn: Conn, app: procrastinate.App, settings: Settings, start_worker: Start
) -> None:
    burst = [
        await support.submit_job(conn, app, settings, user="alice", data={"sleep_s": 0.5})
        for _ in range(12)
    ]
    other = await support.submit_job(conn, app, settings, user="bob", data={"sleep_s": 0.1})
    start_worker("--concurrency", "1", env={"BI_STARVATION_AFTER_S": "8"})
    await _all_done(conn, [*burst, other], timeout=40)
    order = await _start_order(conn, [*burst, other])
    assert order.index(other) <= 6  # first-come order would put it last (12)
