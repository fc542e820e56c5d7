"""/health, /metrics and /stats on the real app over the per-test database."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bi_engine.api import openapi
from bi_engine.db import llm_usage
from tests import pg
from tests.integration.ops.conftest import API, block, running
from workers import metrics as worker_metrics
from workers.narration.breaker import BreakerBoard
from workers.runners import RunnerRegistry

pytestmark = pytest.mark.integration

CONTRACT = {
    "bi_jobs_submitted",
    "bi_jobs_completed",
    "bi_jobs_failed",
    "bi_job_duration_seconds",
    "bi_job_wait_seconds",
    "bi_queue_size",
    "bi_workers_alive",
    "bi_sse_connections",
    "bi_http_requests",
    "bi_llm_requests",
    "bi_llm_tokens",
    "bi_llm_cost_eur",
    "bi_webhook_deliveries",
}
CHAIN = "openai/gpt-4o-mini,ollama/llama3.1,pattern"
CALL = {
    "model": "",
    "prompt_tokens": 0,
    "completion_tokens": 0,
    "cost_eur": 0,
    "duration_ms": 1.0,
    "at": datetime.now(UTC),
}


class BreakerRunner:
    def __init__(self, board: BreakerBoard) -> None:
        self.breakers = board


async def test_health_reports_queue_workers_and_llm_circuits(settings, auth, db, database_url):
    async with running(settings, llm_chain=tuple(CHAIN.split(","))) as (app, client):
        empty = (await client.get("/health")).json()
        openapi.HealthDocument.model_validate(empty)
        assert empty["checks"]["queue"]["queued"] == {"high": 0, "normal": 0, "low": 0}
        assert empty["checks"]["workers"] == {
            **empty["checks"]["workers"],
            "status": "none",
            "alive": 0,
        }
        llm = empty["checks"]["llm"]
        assert llm["chain"] == CHAIN.split(",")
        assert [p["circuit"] for p in llm["providers"]] == ["unknown", "unknown"]

        for priority in ("high", "low", "low"):
            body = {"type": "test", "priority": priority}
            await client.post(f"{API}/analyze", json=body, headers=auth())
        with db() as conn:
            conn.execute("INSERT INTO procrastinate_workers DEFAULT VALUES")
        # a worker reports its breakers the way `bi-engine worker` does
        board = BreakerBoard(threshold=1)
        board.get("ollama/llama3.1").record_failure()
        runners = RunnerRegistry()
        runners.register("process_analysis", BreakerRunner(board))  # type: ignore[arg-type]
        metrics = worker_metrics.WorkerMetrics()
        worker_settings = settings.model_copy(update={"llm_chain": tuple(CHAIN.split(","))})
        await worker_metrics.sample(
            metrics, worker_settings, app.state.engine.pool, runners, "host:1:bi-worker"
        )
        async with app.state.engine.pool.connection() as conn:
            calls = [
                {**CALL, "provider": "ollama/llama3.1", "outcome": "error"},
                {**CALL, "provider": "ollama/llama3.1", "outcome": "skipped"},
                {**CALL, "provider": "pattern", "outcome": "success"},
            ]
            await llm_usage.insert_calls(conn, None, calls)

        response = await client.get("/health")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["database"]["status"] == "up"
    assert checks["queue"]["queued"] == {"high": 1, "normal": 0, "low": 2}
    assert checks["queue"]["queued_total"] == 3
    assert checks["queue"]["oldest_queued_s"] >= 0
    assert checks["workers"]["alive"] == 1
    assert checks["workers"]["status"] == "ok"
    providers = {p["provider"]: p for p in checks["llm"]["providers"]}
    assert providers["openai/gpt-4o-mini"]["circuit"] == "closed"
    assert providers["ollama/llama3.1"]["circuit"] == "open"
    assert providers["ollama/llama3.1"]["open_on_workers"] == 1
    assert providers["ollama/llama3.1"]["recent_calls"] == {"error": 1, "skipped": 1}
    assert checks["llm"]["status"] == "degraded"
    assert metrics.workers_alive._value.get() == 1  # the worker's own gauge, same query


async def test_health_is_503_while_the_database_is_away_and_recovers(
    settings, auth, database_url, pg_admin_url
):
    name = pg.dbname(database_url)
    async with running(settings) as (_app, client):
        assert (await client.get("/health")).status_code == 200
        block(pg_admin_url, name, allow=False)
        try:
            down = await client.get("/health")
            assert down.status_code == 503
            assert down.json()["status"] == "unhealthy"
            assert down.json()["checks"]["database"]["status"] == "down"
            assert down.json()["checks"]["queue"]["status"] == "unknown"
            read = await client.get(f"{API}/jobs", headers=auth())
            assert read.status_code == 503
            assert read.json()["error"]["code"] == "database_unavailable"
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            await asyncio.sleep(3)  # longer than one reconnect attempt
        finally:
            block(pg_admin_url, name, allow=True)
        started = time.monotonic()
        while (await client.get("/health")).status_code != 200:
            assert time.monotonic() - started < 20, "the API did not recover"
            await asyncio.sleep(0.2)
        assert (await client.get(f"{API}/jobs", headers=auth())).status_code == 200


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


async def test_metrics_name_everything_and_compute_the_queue_now(client, auth):
    await client.post(f"{API}/analyze", json={"type": "test", "priority": "high"}, headers=auth())
    text = (await client.get("/metrics")).text
    found = _families(text)
    assert set(found) >= CONTRACT
    queue = {s.labels["priority"]: s.value for s in found["bi_queue_size"].samples}
    assert queue == {"high": 1.0, "normal": 0.0, "low": 0.0}
    assert [s.value for s in found["bi_workers_alive"].samples] == [0.0]
    if shutil.which("promtool"):
        done = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


def _job(conn: Any, user: str, status: str, *, minutes_ago: float, run_s: float = 30) -> uuid.UUID:
    row = conn.execute(
        """
        INSERT INTO analyses (user_id, type, status, created_at, queued_at, started_at,
                              finished_at, result, error_code, attempts)
        VALUES (%(user)s, 'test', %(status)s,
                now() - make_interval(mins => %(ago)s) - make_interval(secs => %(run)s + 10),
                now() - make_interval(mins => %(ago)s) - make_interval(secs => %(run)s + 10),
                CASE WHEN %(status)s <> 'queued'
                     THEN now() - make_interval(mins => %(ago)s) - make_interval(secs => %(run)s)
                END,
                CASE WHEN %(status)s IN ('completed', 'failed', 'cancelled')
                     THEN now() - make_interval(mins => %(ago)s) END,
                CASE WHEN %(status)s = 'completed' THEN '{}'::jsonb END,
                CASE WHEN %(status)s = 'failed' THEN 'invalid_data' END, 1)
        RETURNING id
        """,
        {"user": user, "status": status, "ago": minutes_ago, "run": run_s},
    ).fetchone()
    return row["id"]


def _task(conn: Any, job: uuid.UUID, agent: str, seconds: float, status: str = "completed") -> None:
    conn.execute(
        "INSERT INTO agent_tasks (job_id, agent, task, status, started_at, finished_at)"
        " VALUES (%s, %s, 'analysis', %s, now() - make_interval(secs => %s), now())",
        (job, agent, status, seconds),
    )


async def test_stats_are_scoped_to_the_caller(client, auth, db):
    with db() as conn:
        done = _job(conn, "alice", "completed", minutes_ago=1, run_s=30)
        _job(conn, "alice", "completed", minutes_ago=2, run_s=10)
        _job(conn, "alice", "failed", minutes_ago=3)
        _job(conn, "alice", "running", minutes_ago=0)
        _job(conn, "alice", "queued", minutes_ago=0)
        _job(conn, "alice", "completed", minutes_ago=60 * 24 * 40)  # outside the window
        other = _job(conn, "bob", "completed", minutes_ago=1)
        _task(conn, done, "Senior Business Performance Analyst", 30)
        _task(conn, done, "Executive Writer", 10)
        _task(conn, other, "Executive Writer", 60)
    mine = (await client.get(f"{API}/stats", headers=auth())).json()
    openapi.StatsDocument.model_validate(mine)
    assert mine["scope"] == "own"
    assert mine["active_analyses"] == 2
    assert (mine["queued"], mine["running"]) == (1, 1)
    assert mine["completed"] == 2
    assert mine["failed"] == 1
    assert mine["success_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert mine["average_run_time"] == pytest.approx(20, abs=0.5)
    assert mine["average_completion_time"] == pytest.approx(30, abs=0.5)
    assert mine["completed_today"] in (2, 1, 0)  # minutes ago may cross midnight UTC
    agents = {a["agent"]: a for a in mine["agent_utilization"]}
    assert set(agents) == {"Senior Business Performance Analyst", "Executive Writer"}
    assert agents["Executive Writer"]["busy_seconds"] == pytest.approx(10, abs=0.5)
    assert agents["Senior Business Performance Analyst"]["share"] == pytest.approx(0.75, abs=0.01)
    assert agents["Executive Writer"]["display"] == "Executive Writer"
    everyone = (await client.get(f"{API}/stats", headers=auth("root", role="admin"))).json()
    assert everyone["scope"] == "all"
    assert everyone["completed"] == 3
    assert {a["agent"]: a["tasks"] for a in everyone["agent_utilization"]}["Executive Writer"] == 2
    nobody = (await client.get(f"{API}/stats", headers=auth("carol"))).json()
    assert nobody["success_rate"] is None
    assert nobody["average_completion_time"] is None
    assert nobody["agent_utilization"] == []
