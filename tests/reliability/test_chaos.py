"""Chaos: workers killed with SIGKILL again and again while 200 jobs run.

Two ``bi-engine worker`` processes run 200 ``test`` jobs (submitted through a real
``bi-engine serve``) while a killer sends ``kill -9`` to one of them every 2-4 s for up to
60 s and starts a fresh process in its place. With ``BI_STALLED_AFTER_S=3`` the survivors'
maintenance lane hands the dead worker's jobs back within seconds. The engine promises
three attempts per job (``workers.retry.MAX_ATTEMPTS``); the killer never fires while a
job runs its last attempt, so every job must end ``completed`` — exactly once: one
``completed`` event, the log's last, seqs 1..n without a gap, one succeeded queue job.
A sample of jobs is followed over SSE during the chaos: each stream is gap-free too.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import dump_logs
from tests.support import figures, jobs
from tests.support.processes import ApiServer, Process, ProcessGroup, worker
from tests.support.sse import Reading, read_sse
from workers import retry

pytestmark = [pytest.mark.slow, pytest.mark.acceptance, pytest.mark.timeout(300)]

JOBS = 200
SLEEP_S = 1.5
CONCURRENCY = 3
CHAOS_S = 60.0
FOLLOWED = 12
WORKER_ENV = {"BI_STALLED_AFTER_S": "3", "BI_JOB_TIMEOUT_S": "120"}


async def _submit_all(http: httpx.AsyncClient, settings: Any) -> list[str]:
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> str:
        async with gate:
            doc = await jobs.submit(http, settings, f"user{i % 5}", {"sleep_s": SLEEP_S, "n": i})
        return str(doc["job_id"])

    return list(await asyncio.gather(*(one(i) for i in range(JOBS))))


async def _follow(http: httpx.AsyncClient, settings: Any, job_id: str) -> list[int]:
    """Every seq one client sees, reconnecting with Last-Event-ID when a stream drops."""
    seen: list[int] = []
    headers = jobs.auth(settings, "follower", role="admin")
    for _ in range(20):
        if seen:
            headers = {**headers, "Last-Event-ID": str(seen[-1])}
        reading: Reading = await read_sse(
            http, f"{jobs.API}/jobs/{job_id}/events", headers=headers, timeout=200
        )
        assert reading.status == 200, reading.frames
        seen += reading.ids
        if reading.frames and reading.frames[-1].event in jobs.TERMINAL_KINDS:
            return seen
    raise AssertionError(f"the stream of {job_id} never ended: {seen}")


def _last_attempt_running(database_url: str) -> bool:
    with jobs.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM analyses WHERE status = 'running' AND attempts >= %s",
            (retry.MAX_ATTEMPTS,),
        ).fetchone()
    return bool(row and row["n"])


def _unfinished(database_url: str) -> int:
    with jobs.connect(database_url) as conn:
        counts = jobs.status_counts(conn)
    return JOBS - sum(counts[s] for s in jobs.TERMINAL_KINDS)


class Killer:
    """Kills one worker every 2-4 s, starts a fresh one in its place, counts what it did."""

    def __init__(self, database_url: str, workers: list[Process], group: ProcessGroup) -> None:
        self.database_url = database_url
        self.workers = workers
        self.group = group
        self.kills = 0
        self.held_back = 0
        self.rng = random.Random(10)

    def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and _unfinished(self.database_url) > 0:
            time.sleep(self.rng.uniform(2.0, 4.0))
            if _last_attempt_running(self.database_url):
                self.held_back += 1
                continue
            index = self.rng.randrange(len(self.workers))
            victim = self.workers[index]
            victim.kill()
            self.kills += 1
            self.workers[index] = self.group.add(
                worker(
                    self.database_url,
                    victim.log_path,
                    "--concurrency",
                    str(CONCURRENCY),
                    **WORKER_ENV,
                ).start()
            )


async def test_kill_9_again_and_again_loses_and_duplicates_nothing(
    database_url: str, processes: ProcessGroup, tmp_path: Path
) -> None:
    settings = jobs.settings_for(database_url)
    api = processes.add_server(
        ApiServer(database_url, tmp_path, {"BI_RATE_LIMITS": "false"}).start()
    )
    workers = [
        processes.add(
            worker(
                database_url,
                tmp_path / f"worker-{i}.log",
                "--concurrency",
                str(CONCURRENCY),
                **WORKER_ENV,
            ).start()
        )
        for i in range(2)
    ]
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        job_ids = await _submit_all(http, settings)
        followers = [
            asyncio.create_task(_follow(http, settings, job_id))
            for job_id in job_ids[:: JOBS // FOLLOWED][:FOLLOWED]
        ]
        killer = Killer(database_url, workers, processes)
        await asyncio.to_thread(killer.run, CHAOS_S)
        counts = await jobs.await_all_terminal(database_url, JOBS, timeout=150)
        streams = await asyncio.gather(*followers)
    elapsed = time.monotonic() - started

    assert counts["completed"] == JOBS, (counts, dump_logs(processes))
    with jobs.connect(database_url) as conn:
        report = jobs.audit_event_logs(conn, job_ids)
        attempts = conn.execute(
            "SELECT attempts, count(*) AS n FROM analyses GROUP BY attempts ORDER BY attempts"
        ).fetchall()
        runs = conn.execute(
            "SELECT args->>'job_id' AS job_id, count(*) AS n FROM procrastinate_jobs"
            " WHERE task_name = 'bi.run_analysis' AND status = 'succeeded'"
            " GROUP BY 1"
        ).fetchall()
        left = conn.execute(
            "SELECT count(*) AS n FROM procrastinate_jobs"
            " WHERE task_name = 'bi.run_analysis' AND status IN ('todo', 'doing')"
        ).fetchone()
    assert report.jobs == JOBS
    assert report.clean, report
    assert report.completed_events == {1: JOBS}
    assert sorted(int(r["n"]) for r in runs) == [1] * JOBS
    assert left is not None
    assert left["n"] == 0
    for seen in streams:
        assert seen == list(range(1, len(seen) + 1)), seen
    by_attempts = {int(r["attempts"]): int(r["n"]) for r in attempts}
    assert killer.kills >= 8, killer.kills
    assert sum(n for a, n in by_attempts.items() if a > 1) > 0, by_attempts
    figures.record(
        "reliability",
        f"chaos: {JOBS} jobs, {killer.kills} kill -9, {killer.held_back} kills held back,"
        f" attempts {by_attempts}, retrying events {report.retrying_events},"
        f" events {report.events}, followed streams {len(streams)} (gap-free), {elapsed:.1f} s",
    )
