"""Your AI Team on a real database: the pipeline completes every analysis type, each finished
Processing Task is saved and a retried job resumes after it, LLM calls are recorded with
their tokens and cost, and the monthly budget keeps jobs off the cloud once spent."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import procrastinate
import psycopg
import pytest

from bi_engine import control
from bi_engine.db import agent_tasks, llm_usage
from bi_engine.settings import Settings
from tests.fakes.openai_server import FakeOpenAI, cooperative, serve
from tests.integration.workers import support
from tests.unit.crew.support import AbortSwitch, RecordingSink, body_for, check_result, context
from workers import pipeline, runners
from workers.crew.runner import ANALYSIS_TYPES, CrewRunner
from workers.narration.breaker import BreakerBoard

pytestmark = pytest.mark.integration

Conn = psycopg.AsyncConnection[Any]
CLOUD = "openai/gpt-4o-mini"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with serve(cooperative(lambda _request: "The figures speak for themselves.")) as server:
        yield server


async def submitted(conn: Conn, app: procrastinate.App, settings: Settings, kind: str) -> uuid.UUID:
    body = body_for(kind)
    return await support.submit_job(conn, app, settings, data=body["data"], type=kind)


@pytest.mark.parametrize("kind", ANALYSIS_TYPES)
async def test_the_pipeline_completes_every_type_with_the_ai_team(
    conn: Conn, app: procrastinate.App, settings: Settings, deps: pipeline.Deps, kind: str
) -> None:
    registry = runners.RunnerRegistry()
    runner = CrewRunner()
    for analysis_type in ANALYSIS_TYPES:
        registry.register(analysis_type, runner)
    job_id = await submitted(conn, app, settings, kind)
    outcome = await pipeline.run_analysis(
        pipeline.Deps(settings=settings, pool=deps.pool, registry=registry), job_id
    )
    assert outcome.kind == "completed"
    found = await support.row(conn, job_id)
    assert (found["status"], found["provider"], found["degraded"]) == (
        "completed",
        "pattern",
        False,
    )
    check_result(found["result"])
    assert found["report_markdown"] == found["result"]["report_markdown"]
    log = await support.events(conn, job_id)
    support.assert_gap_free(log)
    progress = [e["data"] for e in log if e["kind"] == "progress"]
    assert [p["progress"] for p in progress] == sorted(p["progress"] for p in progress)
    assert all(p["message"].startswith("Your AI Team") for p in progress)
    assert any(p["agent"] for p in progress), "progress names the AI Assistant at work"
    tasks = await agent_tasks.of_job(conn, job_id)
    assert tasks
    assert {t["status"] for t in tasks} == {"completed"}
    assert {t["task"] for t in tasks} >= {"executive_summary", "quality_review"}


async def test_a_retried_job_resumes_after_its_last_completed_task(
    conn: Conn, app: procrastinate.App, settings: Settings
) -> None:
    job_id = await submitted(conn, app, settings, "optimization_review")
    runner = CrewRunner()
    first = context(
        "optimization_review", settings=settings, job_id=job_id, should_abort=AbortSwitch(after=3)
    )
    with pytest.raises(asyncio.CancelledError):
        await runner(first, RecordingSink())
    saved = await agent_tasks.completed(conn, job_id)
    assert list(saved) == ["map_process_performance", "recommend_optimizations"]

    second_sink = RecordingSink()
    second = context("optimization_review", settings=settings, job_id=job_id, attempt=2)
    outcome = await runner(second, second_sink)
    check_result(outcome.result)
    rows = await agent_tasks.of_job(conn, job_id)
    by_attempt = {(r["attempt"], r["task"]) for r in rows}
    assert (2, "map_process_performance") not in by_attempt, "done work is not paid again"
    assert (2, "generate_implementation_roadmap") in by_attempt
    assert (2, "quality_review") in by_attempt
    steps = {step for _, step, _, _ in second_sink.updates}
    assert "Map process performance" not in steps
    fresh = CrewRunner()
    again = await fresh(context("optimization_review", settings=settings), RecordingSink())
    assert outcome.result["analysis"] == again.result["analysis"]
    assert outcome.report_markdown == again.report_markdown


async def test_llm_calls_are_recorded_with_tokens_and_cost(
    conn: Conn, app: procrastinate.App, settings: Settings, fake: FakeOpenAI
) -> None:
    job_id = await submitted(conn, app, settings, "trend_analysis")
    cloud = settings.model_copy(update={"llm_chain": (CLOUD, "pattern"), "openai_api_key": "k"})
    runner = CrewRunner(base_urls={CLOUD: fake.base_url}, breakers=BreakerBoard())
    outcome = await runner(
        context("trend_analysis", settings=cloud, job_id=job_id), RecordingSink()
    )
    calls = await llm_usage.calls_of(conn, job_id)
    assert len(calls) == len(fake.completions) > 0
    assert {c["provider"] for c in calls} == {CLOUD}
    assert {c["outcome"] for c in calls} == {"success"}
    assert outcome.prompt_tokens == sum(c["prompt_tokens"] for c in calls)
    assert outcome.completion_tokens == sum(c["completion_tokens"] for c in calls)
    assert outcome.cost_eur == pytest.approx(float(sum(c["cost_eur"] for c in calls)), abs=1e-6)
    assert outcome.cost_eur > 0
    tasks = await agent_tasks.of_job(conn, job_id)
    assert sum(t["prompt_tokens"] for t in tasks) == outcome.prompt_tokens


async def test_a_spent_budget_keeps_jobs_on_local_providers(
    conn: Conn, app: procrastinate.App, settings: Settings, fake: FakeOpenAI
) -> None:
    earlier = await submitted(conn, app, settings, "trend_analysis")
    spent = {
        "provider": CLOUD,
        "model": "gpt-4o-mini",
        "outcome": "success",
        "prompt_tokens": 10,
        "completion_tokens": 10,
        "cost_eur": 5.5,
        "duration_ms": 1.0,
        "at": datetime.now(UTC),
    }
    await llm_usage.insert_calls(conn, earlier, [spent])
    assert await llm_usage.month_spend_eur(conn) == pytest.approx(5.5)

    job_id = await submitted(conn, app, settings, "trend_analysis")
    limited = settings.model_copy(
        update={
            "llm_chain": (CLOUD, "pattern"),
            "openai_api_key": "k",
            "llm_monthly_budget_eur": 5.0,
        }
    )
    runner = CrewRunner(base_urls={CLOUD: fake.base_url}, breakers=BreakerBoard())
    outcome = await runner(
        context("trend_analysis", settings=limited, job_id=job_id), RecordingSink()
    )
    assert fake.requests == []
    llm = outcome.result["llm"]
    assert (llm["provider"], llm["degraded"]) == ("pattern", True)
    assert llm["skipped"] == [{"provider": CLOUD, "reason": "budget"}]
    skipped = [c for c in await llm_usage.calls_of(conn, job_id) if c["outcome"] == "skipped"]
    assert len(skipped) == 1


async def test_cancel_mid_crew_through_the_pipeline_then_retry_resumes(
    conn: Conn, app: procrastinate.App, settings: Settings, deps: pipeline.Deps
) -> None:
    base = cooperative(lambda _request: "The figures speak for themselves.")
    with serve(lambda request: dataclasses.replace(base(request), delay_s=0.1)) as slow:
        cloud = settings.model_copy(update={"llm_chain": (CLOUD, "pattern"), "openai_api_key": "k"})
        registry = runners.RunnerRegistry()
        registry.register("optimization_review", CrewRunner(base_urls={CLOUD: slow.base_url}))
        run_deps = pipeline.Deps(
            settings=cloud,
            pool=deps.pool,
            registry=registry,
            watch_interval_s=0.1,
            progress_interval_s=0.1,
        )
        job_id = await submitted(conn, app, settings, "optimization_review")
        await claim(app)
        run = asyncio.ensure_future(pipeline.run_analysis(run_deps, job_id))

        async def one_task_saved() -> bool:
            return bool(await agent_tasks.completed(conn, job_id))

        await support.wait_until(one_task_saved, timeout=20, what="a saved task")
        await control.cancel(conn, app, job_id, control.Actor())
        assert (await asyncio.wait_for(run, timeout=10)).kind == "cancelled"
        await asyncio.sleep(0.3)
        sent = len(slow.completions)
        await asyncio.sleep(0.5)
        assert len(slow.completions) == sent, "the crew stopped with the job"
        first = set(await agent_tasks.completed(conn, job_id))
        assert first
        assert "quality_review" not in first

        await control.retry(conn, app, job_id, control.Actor())
        await claim(app)
        assert (await pipeline.run_analysis(run_deps, job_id)).kind == "completed"
    rows = await agent_tasks.of_job(conn, job_id)
    second = {r["task"] for r in rows if r["attempt"] == 2}
    assert not first & second, "tasks finished before the cancel are not run again"
    assert "quality_review" in second
    found = await support.row(conn, job_id)
    assert (found["status"], found["attempts"], found["provider"]) == ("completed", 2, CLOUD)


async def claim(app: procrastinate.App) -> None:
    """As a worker would: procrastinate's job is 'doing' while the pipeline runs it."""
    worker_id = await app.job_manager.register_worker()
    assert await app.job_manager.fetch_job(queues=None, worker_id=worker_id) is not None
