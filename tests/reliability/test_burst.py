"""Load: 10,000 jobs in a burst through the API, then drained by 2 workers in priority order.

Twenty users submit 10,000 ``test`` jobs (10 % high, 60 % normal, 30 % low priority) through
the API's own submission use case (``bi_engine.submit.create_jobs``, batches of 100 as its
group commit makes under load); then two ``bi-engine worker`` processes drain the queue.
Every job must complete with a clean event log. (HTTP under load: tests/reliability/
test_chaos.py and bench/soak.py.)

Priority inversions are counted from the queue's own record (``procrastinate_events``: the
``deferred`` and ``started`` moments): a job that starts while a job of a HIGHER priority
level is waiting. Every job is committed before the first worker starts, so commit lag
cannot fake one. Fair-share reordering stays within a level and starvation promotion
needs 300 s. Measured: a few inversions per 10,000 jobs, each while the fairness rebalance
(``bi.maintenance.promote_starved``) ran — its UPDATE locks the rows it reorders and the
fetch skips locked rows; the test holds them to that cause and below 0.2 %.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import psycopg_pool
import pytest
from psycopg.rows import dict_row

from bi_engine import queue, submit
from bi_engine.auth.principal import Principal
from bi_engine.db.connection import connect_kwargs
from bi_engine.domain.submission import AnalysisRequest
from tests.reliability.conftest import dump_logs
from tests.support import figures, jobs
from tests.support.processes import ProcessGroup, worker

pytestmark = [pytest.mark.slow, pytest.mark.acceptance, pytest.mark.timeout(400)]

JOBS = 10_000
USERS = 20
FETCH_RACE_S = 0.05
LEVEL = {"low": 0, "normal": 1, "high": 2}


def _priority(i: int) -> str:
    slot = i % 10
    return "high" if slot == 0 else "low" if slot >= 7 else "normal"


async def _burst(database_url: str) -> float:
    """Submit every job through the API's own group-commit use case (batches of 100 on 8
    connections, as the API's writers do under load); the seconds it took."""
    settings = jobs.settings_for(database_url)
    pool: psycopg_pool.AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
        database_url,
        kwargs={**connect_kwargs("bi"), "autocommit": True, "row_factory": dict_row},
        min_size=8,
        max_size=8,
        open=False,
    )
    app = queue.make_app(database_url, "bi")
    batches = [range(start, min(JOBS, start + 100)) for start in range(0, JOBS, 100)]
    pending = iter(batches)

    async def writer() -> None:
        for batch in pending:
            items = [
                (
                    submit.Caller(principal=Principal(user_id=f"u{i % USERS}")),
                    AnalysisRequest.model_validate(
                        {"type": "test", "data": {"i": i}, "priority": _priority(i)}
                    ),
                )
                for i in batch
            ]
            async with pool.connection() as conn:
                await submit.create_jobs(conn, app, settings, items)

    async with pool:
        await queue.open_app(app, pool)
        try:
            started = time.monotonic()
            await asyncio.gather(*(writer() for _ in range(8)))
            return time.monotonic() - started
        finally:
            await app.close_async()


def inverted_starts(rows: list[dict[str, Any]], fetch_race_s: float = 0.0) -> list[float]:
    """Jobs that started while a job of a higher level was waiting.

    One sweep over the moments in time order, keeping how many jobs of each level wait. A
    higher job counts as taken ``fetch_race_s`` before its own start: two workers' fetches
    run at once, and the one that skips a row the other has just locked stamps an earlier
    ``now()`` on the lower row it takes.
    """
    moments: list[tuple[float, int, int]] = []  # (time, kind, level)
    for row in rows:
        level = LEVEL[row["priority"]]
        started = row["started_at"].timestamp()
        moments.append((row["deferred_at"].timestamp(), 0, level))  # waits from here
        moments.append((started - fetch_race_s, 1, level))  # taken
        moments.append((started, 2, level))  # starts: is anything higher waiting?
    moments.sort()
    waiting = [0, 0, 0]
    inverted: list[float] = []
    for at, kind, level in moments:
        if kind == 0:
            waiting[level] += 1
        elif kind == 1:
            waiting[level] -= 1
        elif any(waiting[higher] > 0 for higher in range(level + 1, 3)):
            inverted.append(at)
    return inverted


def count_inversions(rows: list[dict[str, Any]], fetch_race_s: float = 0.0) -> int:
    return len(inverted_starts(rows, fetch_race_s))


def during(moments: list[float], spans: list[dict[str, Any]], slack_s: float = 0.05) -> int:
    """How many ``moments`` fall inside one of ``spans`` (started_at..ended_at, +- slack)."""
    windows = [
        (s["started_at"].timestamp() - slack_s, s["ended_at"].timestamp() + slack_s)
        for s in spans
        if s["started_at"] and s["ended_at"]
    ]
    return sum(1 for m in moments if any(a <= m <= b for a, b in windows))


async def test_ten_thousand_jobs_in_a_burst_all_complete_in_priority_order(
    database_url: str, processes: ProcessGroup, tmp_path: Path
) -> None:
    submit_s = await _burst(database_url)
    started = time.monotonic()
    for i in range(2):
        processes.add(worker(database_url, tmp_path / f"worker-{i}.log").start())
    counts = await jobs.await_all_terminal(database_url, JOBS, timeout=300, poll_s=1.0)
    drain_s = time.monotonic() - started
    assert counts == {"completed": JOBS}, (counts, dump_logs(processes))

    with jobs.connect(database_url) as conn:
        report = jobs.audit_event_logs(conn)
        rows = conn.execute(
            "SELECT a.priority,"
            " min(e.at) FILTER (WHERE e.type = 'deferred') AS deferred_at,"
            " min(e.at) FILTER (WHERE e.type = 'started') AS started_at"
            " FROM analyses a"
            " JOIN procrastinate_jobs j ON j.args->>'job_id' = a.id::text"
            " JOIN procrastinate_events e ON e.job_id = j.id"
            " WHERE j.task_name = 'bi.run_analysis'"
            " GROUP BY a.id, a.priority"
        ).fetchall()
    assert report.jobs == JOBS
    assert report.clean, report
    assert len(rows) == JOBS
    strict = count_inversions(rows)
    inverted = inverted_starts(rows, FETCH_RACE_S)
    inversions = len(inverted)
    with jobs.connect(database_url) as conn:
        rebalances = conn.execute(
            "SELECT min(e.at) FILTER (WHERE e.type = 'started') AS started_at,"
            " max(e.at) FILTER (WHERE e.type IN ('succeeded', 'failed')) AS ended_at"
            " FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id"
            " WHERE j.task_name = 'bi.maintenance.promote_starved' GROUP BY j.id"
        ).fetchall()
    in_rebalance = during(inverted, rebalances)
    figures.record(
        "reliability",
        f"burst: {JOBS} jobs from {USERS} users submitted in {submit_s:.1f} s"
        f" ({JOBS / submit_s:.0f}/s, the API's group-commit use case), then"
        f" drained by 2 workers in {drain_s:.1f} s ({JOBS / drain_s:.0f} jobs/s), all"
        f" completed; priority inversions: {inversions} (a higher job waiting more than"
        f" {FETCH_RACE_S * 1000:.0f} ms; {strict} counting concurrent fetches),"
        f" {in_rebalance} of them while a fairness rebalance ran ({len(rebalances)} ran)",
    )
    # Known: the fairness rebalance's UPDATE holds row locks, and procrastinate's fetch
    # (FOR UPDATE SKIP LOCKED) passes over those rows, so a fetch during a rebalance can take
    # a lower-level job. Every inversion must be one of those, and they must stay rare.
    assert inversions == in_rebalance, (inversions, in_rebalance)
    assert inversions <= JOBS // 500, inversions


def test_the_inversion_count_sees_an_inversion() -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {"priority": "high", "deferred_at": t0, "started_at": t0 + timedelta(seconds=5)},
        {"priority": "low", "deferred_at": t0, "started_at": t0 + timedelta(seconds=1)},
        {"priority": "normal", "deferred_at": t0, "started_at": t0 + timedelta(seconds=6)},
    ]
    assert count_inversions(rows) == 1
    assert count_inversions(rows, fetch_race_s=5) == 0  # within the race window
    rows[1]["started_at"] = t0 + timedelta(seconds=7)
    assert count_inversions(rows) == 0
