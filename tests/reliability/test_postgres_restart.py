"""PostgreSQL goes away under load and comes back: 503 meanwhile, then recovery on its own.

A PRIVATE cluster (tests/support/private_pg.py) is stopped with ``-m immediate`` (every
connection cut, as in a crash) while a real ``bi-engine serve`` and ``bi-engine worker``
run jobs, clients poll status and follow SSE streams. While it is down, every answer is a
503 (``database_unavailable`` with ``Retry-After``, ``/health`` ``unhealthy``), never
another 5xx and never a hang. Once it is back, nothing is restarted: the API answers 200
again, new submissions are accepted, every job completes, and every stream — resumed with
``Last-Event-ID`` whenever it dropped — delivered seq 1..n without a gap or a duplicate.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bi_engine.db import migrate
from tests.reliability.conftest import dump_logs
from tests.support import figures, jobs
from tests.support.private_pg import PrivatePostgres
from tests.support.processes import ApiServer, ProcessGroup, worker
from tests.support.sse import read_sse

pytestmark = [pytest.mark.slow, pytest.mark.acceptance, pytest.mark.timeout(300)]

JOBS = 24
SLEEP_S = 6.0
OUTAGE_S = 15.0
REQUEST_TIMEOUT_S = 15.0
"""No request may hang: the pool gives up within its own timeout (10 s) and answers 503."""


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().init()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def private_db(private_pg: PrivatePostgres) -> str:
    import psycopg

    with psycopg.connect(private_pg.admin_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE bi_restart")
    url = private_pg.url("bi_restart")
    migrate.upgrade(url, "bi")
    return url


class Poller:
    """Health probes, status reads and submissions, each in its own loop; every answer kept."""

    def __init__(self, http: httpx.AsyncClient, settings: Any, job_id: str) -> None:
        self.http = http
        self.headers = jobs.auth(settings, "poller")
        self.job_id = job_id
        self.answers: list[tuple[float, str, int, str | None]] = []
        self.slowest_s = 0.0
        self.durations: list[tuple[str, int, float]] = []
        self.stop = asyncio.Event()

    async def run(self) -> None:
        await asyncio.gather(
            *(self._loop(what) for what in ("health", "status", "submit") for _ in range(2))
        )

    def _request(self, what: str) -> httpx.Request:
        if what == "health":
            return self.http.build_request("GET", "/health")
        if what == "status":
            return self.http.build_request(
                "GET", f"{jobs.API}/jobs/{self.job_id}", headers=self.headers
            )
        body = {"type": "test", "data": {"sleep_s": 0}}
        return self.http.build_request(
            "POST", f"{jobs.API}/analyze", json=body, headers=self.headers
        )

    async def _loop(self, what: str) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                response = await self.http.send(self._request(what))
            except httpx.TimeoutException:
                self.answers.append((time.monotonic(), what, 0, "client_timeout"))
                self.slowest_s = max(self.slowest_s, time.monotonic() - started)
                continue
            self.slowest_s = max(self.slowest_s, time.monotonic() - started)
            self.answers.append((time.monotonic(), what, response.status_code, _code(response)))
            self.durations.append((what, response.status_code, time.monotonic() - started))
            if response.status_code == 503 and what != "health":
                assert response.headers.get("retry-after"), response.headers
            await asyncio.sleep(0.2)


def _code(response: httpx.Response) -> str | None:
    """The error code of a 5xx (the health document's status for /health)."""
    if response.status_code < 500:
        return None
    body = response.json()
    error = body.get("error")
    return str(error["code"]) if isinstance(error, dict) else str(body.get("status"))


async def _follow(
    http: httpx.AsyncClient, settings: Any, job_id: str, chunk: int | None = None
) -> tuple[list[int], int]:
    """All seqs one client saw and how many times it reconnected (``chunk``: hang up after
    that many frames each time, as a flaky network would, and resume)."""
    seen: list[int] = []
    reconnects = 0
    headers = jobs.auth(settings, "poller")
    while reconnects < 200:
        resume = {"Last-Event-ID": str(seen[-1])} if seen else {}
        try:
            reading = await read_sse(
                http,
                f"{jobs.API}/jobs/{job_id}/events",
                headers={**headers, **resume},
                stop_after=chunk,
                timeout=120,
            )
        except (httpx.HTTPError, TimeoutError):
            reading = None
        if reading is not None and reading.status == 200:
            seen += reading.ids
            if reading.frames and reading.frames[-1].event in jobs.TERMINAL_KINDS:
                return seen, reconnects
        reconnects += 1
        await asyncio.sleep(0.5)
    raise AssertionError(f"the stream of {job_id} never ended: {seen}")


async def test_database_outage_gives_503_then_everything_recovers(
    private_pg: PrivatePostgres, private_db: str, processes: ProcessGroup, tmp_path: Path
) -> None:
    settings = jobs.settings_for(private_db)
    env = {"BI_RATE_LIMITS": "false", "BI_STALLED_AFTER_S": "5"}
    api = processes.add_server(ApiServer(private_db, tmp_path, env).start())
    processes.add(worker(private_db, tmp_path / "worker.log", "--concurrency", "8", **env).start())
    async with httpx.AsyncClient(base_url=api.url, timeout=REQUEST_TIMEOUT_S) as http:
        ids = [
            str((await jobs.submit(http, settings, "poller", {"sleep_s": SLEEP_S}))["job_id"])
            for _ in range(JOBS)
        ]
        followers = [
            asyncio.create_task(_follow(http, settings, job_id, chunk=2 if i % 2 else None))
            for i, job_id in enumerate(ids[:8])
        ]
        poller = Poller(http, settings, ids[0])
        polling = asyncio.create_task(poller.run())
        await asyncio.sleep(2.0)  # jobs running, streams open

        outage_started = time.monotonic()
        await asyncio.to_thread(private_pg.stop, "immediate")
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(private_pg.start)
        back_at = time.monotonic()

        recovered_after = await _wait_recovered(http, settings)
        counts = await jobs.await_all_terminal(private_db, JOBS, timeout=120)
        poller.stop.set()
        await polling
        streams = await asyncio.gather(*followers)

    during = [a for a in poller.answers if outage_started + 0.5 < a[0] < back_at]
    statuses = Counter((what, status) for _, what, status, _ in during)
    assert during, "no request was made during the outage"
    assert all(status == 503 for _, _, status, _ in during), statuses
    codes = {code for _, what, _, code in during if what != "health"}
    assert codes <= {"database_unavailable"}, codes
    assert {code for _, what, _, code in during if what == "health"} <= {"unhealthy"}
    assert poller.slowest_s < REQUEST_TIMEOUT_S
    after = [a for a in poller.answers if a[0] > back_at + recovered_after + 1]
    assert after, "no request after the recovery"
    assert all(status < 500 for _, _, status, _ in after), after

    with jobs.connect(private_db) as conn:
        total = sum(jobs.status_counts(conn).values())
    counts = await jobs.await_all_terminal(private_db, total, timeout=120)
    assert counts == {"completed": total}, (counts, dump_logs(processes))
    with jobs.connect(private_db) as conn:
        report = jobs.audit_event_logs(conn)
    assert report.clean, report
    for seen, _ in streams:
        assert seen == list(range(1, len(seen) + 1)), seen
    figures.record(
        "reliability",
        f"postgres restart: {OUTAGE_S:.0f} s outage, {len(during)} requests during it"
        f" ({dict(statuses)}), slowest answer {poller.slowest_s:.2f} s, API healthy"
        f" {recovered_after:.1f} s after the server was back, {total} jobs completed,"
        f" {len(streams)} streams gap-free after {sum(r for _, r in streams)} reconnects",
    )


async def _wait_recovered(http: httpx.AsyncClient, settings: Any, timeout: float = 30) -> float:
    """Seconds until /health is 200 and a submission is accepted again."""
    started = time.monotonic()
    headers = jobs.auth(settings, "poller")
    while time.monotonic() - started < timeout:
        health = await http.get("/health")
        if health.status_code == 200:
            sub = await http.post(
                f"{jobs.API}/analyze", json={"type": "test", "data": {}}, headers=headers
            )
            if sub.status_code == 202:
                return time.monotonic() - started
        await asyncio.sleep(0.2)
    raise AssertionError("the API did not recover on its own")
