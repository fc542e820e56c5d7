"""Regressions found by the outage tests, each pinned on its own (fast) here.

- A submission batch that cannot get a connection at all answers every request at once;
  it used to retry each one alone, so a 503 took two pool timeouts instead of one.
- A worker process outlives a database restart: procrastinate stops a worker whose LISTEN
  connection fails, and the process used to exit with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
import pytest

from bi_engine import queue
from bi_engine.api.submitter import Submitter
from bi_engine.auth.principal import Principal
from bi_engine.db import migrate
from bi_engine.domain.submission import AnalysisRequest
from bi_engine.submit import Caller
from tests.support import jobs
from tests.support.private_pg import PrivatePostgres
from tests.support.processes import ProcessGroup, free_port, worker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


async def test_a_batch_without_any_connection_fails_once_not_per_submission() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"  # nobody listens there
    pool: psycopg_pool.AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
        url, min_size=1, max_size=2, open=False, timeout=1.0, reconnect_timeout=60
    )
    await pool.open(wait=False)
    settings = jobs.settings_for(url)
    submitter = Submitter(pool=pool, queue=queue.make_app(url, "bi"), settings=settings, writers=1)
    submitter.start()
    caller = Caller(principal=Principal(user_id="alice"))
    request = AnalysisRequest.model_validate({"type": "test", "data": {}})
    try:
        started = time.monotonic()
        outcomes = await asyncio.gather(
            *(submitter.submit(caller, request) for _ in range(5)), return_exceptions=True
        )
        elapsed = time.monotonic() - started
    finally:
        await submitter.close()
        await pool.close()
    assert all(isinstance(o, psycopg_pool.PoolTimeout) for o in outcomes), outcomes
    assert elapsed < 1.8, elapsed  # one pool timeout (1 s), not one per submission


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().init()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.mark.acceptance
def test_a_worker_process_outlives_a_database_restart(
    private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    with psycopg.connect(private_pg.admin_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE bi_worker_restart")
    url = private_pg.url("bi_worker_restart")
    migrate.upgrade(url, "bi")
    group = ProcessGroup()
    try:
        process = group.add(worker(url, tmp_path / "worker.log", BI_STALLED_AFTER_S="3").start())
        _wait_for_heartbeat(url)
        private_pg.stop("immediate")
        time.sleep(3)
        assert process.alive(), process.log()[-3000:]
        private_pg.start()
        _wait_for_heartbeat(url, timeout=30)
        assert process.alive(), process.log()[-3000:]
        assert "worker_lanes_restarting" in process.log()
    finally:
        group.stop_all()


def _wait_for_heartbeat(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with jobs.connect(url) as conn:
                row = conn.execute(
                    "SELECT count(*) AS n FROM procrastinate_workers"
                    " WHERE last_heartbeat > now() - interval '2 seconds'"
                ).fetchone()
            if row and row["n"] >= 2:  # the job lane and the maintenance lane
                return
        except psycopg.OperationalError:
            pass
        time.sleep(0.2)
    raise AssertionError("no live worker lanes")
