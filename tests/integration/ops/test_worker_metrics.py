"""The worker's metrics in process: the pipeline reports to them, the exporter serves them,
the sampler reports circuits and live workers to the database."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bi_engine.db import connection
from tests.integration.ops.conftest import API
from workers import metrics as worker_metrics
from workers import pipeline, runners
from workers.app import make_pool

pytestmark = pytest.mark.integration


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_attempts_are_counted_and_served(client, auth, settings):
    ok = (await client.post(f"{API}/analyze", json={"type": "test"}, headers=auth())).json()
    bad_body = {"type": "test", "data": {"sleep_s": 0}}
    bad = (await client.post(f"{API}/analyze", json=bad_body, headers=auth())).json()
    conn = await connection.connect(settings.require_database_url(), settings.db_schema)
    await conn.execute(
        'UPDATE analysis_inputs SET data = \'{"sleep_s": "long"}\' WHERE job_id = %s',
        (bad["job_id"],),
    )
    await conn.close()
    metrics = worker_metrics.WorkerMetrics()
    chained = settings.model_copy(update={"llm_chain": ("openai/gpt-4o-mini", "pattern")})
    async with make_pool(chained, 4) as pool:
        registry = runners.default_registry(extensions=())
        deps = pipeline.Deps(settings=chained, pool=pool, registry=registry, observer=metrics)
        assert (await pipeline.run_analysis(deps, uuid.UUID(ok["job_id"]))).kind == "completed"
        assert (await pipeline.run_analysis(deps, uuid.UUID(bad["job_id"]))).kind == "failed"
        served = chained.model_copy(update={"worker_metrics_port": 0})
        async with worker_metrics.running(metrics, served, pool, registry, name="w1") as port:
            await _until_reported(pool)
            async with httpx.AsyncClient() as http:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT count(*) AS n FROM llm_circuits")
            left = await cursor.fetchone()
    found = samples(text)
    assert found[("bi_jobs_completed_total", (("type", "test"),))] == 1
    failed = found[("bi_jobs_failed_total", (("reason", "invalid_data"), ("type", "test")))]
    assert failed == 1
    assert found[("bi_job_duration_seconds_count", (("type", "test"),))] == 2
    assert found[("bi_job_wait_seconds_count", ())] == 2
    assert found[("bi_llm_circuit_open", (("provider", "openai/gpt-4o-mini"),))] == 0
    assert found[("bi_workers_alive", ())] == 0  # no procrastinate worker in this test
    assert left == {"n": 0}, "a stopping worker removes its circuit report"


async def _until_reported(pool: Any) -> None:
    for _ in range(100):
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT provider, state FROM llm_circuits")
            rows = await cursor.fetchall()
        if rows:
            assert rows == [{"provider": "openai/gpt-4o-mini", "state": "closed"}]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the sampler never reported")
