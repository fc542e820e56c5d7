"""The AI Teams against OpenAI-compatible providers over real HTTP (local fake servers):
success, 500, 429 and timeouts falling back to the next provider and finally ``pattern``,
token and cost accounting, the grounding check on a planted wrong number, ReAct replies,
and confidential jobs that never reach the cloud."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from bi_engine.settings import Settings
from tests.fakes.openai_server import FakeOpenAI, Reply, cooperative, serve
from tests.unit.crew.support import RecordingSink, body_for, check_result, context
from workers.analytics import analyze
from workers.crew.agents import SPECS
from workers.crew.assignments import ASSIGNMENTS
from workers.crew.runner import CrewRunner
from workers.job import AnalysisOutcome
from workers.narration import accounting
from workers.narration.breaker import BreakerBoard

pytestmark = pytest.mark.unit

FIRST = "openai/gpt-4o-mini"
SECOND = "openai/gpt-4.1-mini"
REF = re.compile(r"\[ref:([a-z_]+)\]")
WRONG = "The median cycle time is 999.9 seconds."


def task_of(request: dict[str, Any]) -> str:
    for message in request.get("messages") or []:
        if message.get("role") == "user":
            match = REF.search(str(message.get("content") or ""))
            if match:
                return match.group(1)
    return ""


class Writer:
    """Grounded words per Processing Task (optionally one planted wrong figure)."""

    def __init__(self, analysis_type: str, *, plant: bool = False) -> None:
        body = body_for(analysis_type)
        self.analysis = analyze(analysis_type, body["data"]).analysis
        self.plant = plant

    def __call__(self, request: dict[str, Any]) -> str:
        top = self.analysis.findings[0]
        task = task_of(request)
        if task == "executive_summary":
            extra = f" {WRONG}" if self.plant else ""
            return f"Headline: {top.title}\n\n{top.detail}{extra} Fix this first."
        if task == "quality_review":
            return "Final Answer: The draft is consistent with the computed facts."
        return f"{ASSIGNMENTS.get(task, ASSIGNMENTS['interpret_data']).title}: {top.detail}"


def delegating(writer: Writer) -> Any:
    """A cooperative model that, as a team lead, delegates each task to the right colleague."""
    base = cooperative(writer)

    def respond(request: dict[str, Any]) -> Reply:
        tools = {t["function"]["name"] for t in request.get("tools") or []}
        done = any(m.get("role") == "tool" for m in request.get("messages") or [])
        if "delegate_work_to_coworker" in tools:
            if done:
                last = [m for m in request["messages"] if m.get("role") == "tool"][-1]
                return Reply.final(str(last["content"]))
            key = task_of(request)
            role = SPECS[ASSIGNMENTS[key].agent].role
            task = f"{ASSIGNMENTS[key].title} [ref:{key}]"
            return Reply.call(
                "delegate_work_to_coworker", {"task": task, "context": "", "coworker": role}
            )
        return base(request)

    return respond


@pytest.fixture
def fakes() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    with serve() as one, serve() as two:
        yield one, two


def runner_for(fakes: tuple[FakeOpenAI, FakeOpenAI]) -> CrewRunner:
    urls = {FIRST: fakes[0].base_url, SECOND: fakes[1].base_url}
    return CrewRunner(base_urls=urls, breakers=BreakerBoard())


def chain_settings(chain: str, **extra: Any) -> Settings:
    return Settings(llm_chain=chain, openai_api_key="sk-test", **extra)


async def run(
    fakes: tuple[FakeOpenAI, FakeOpenAI], analysis_type: str, settings: Settings, **kw: Any
) -> AnalysisOutcome:
    ctx = context(analysis_type, settings=settings, **kw)
    return await runner_for(fakes)(ctx, RecordingSink())


async def test_cloud_provider_writes_the_report_and_is_accounted(
    fakes: tuple[FakeOpenAI, FakeOpenAI],
) -> None:
    fakes[0].responder = cooperative(Writer("optimization_review"))
    outcome = await run(fakes, "optimization_review", chain_settings(f"{FIRST},pattern"))
    check_result(outcome.result)
    llm = outcome.result["llm"]
    requests = fakes[0].completions
    assert (outcome.provider, outcome.degraded) == (FIRST, False)
    assert llm["tried"] == [FIRST]
    assert llm["provider"] == FIRST
    assert llm["tokens"] == {"prompt": 120 * len(requests), "completion": 30 * len(requests)}
    each = accounting.cost_eur(FIRST, 120, 30)
    assert llm["cost_eur"] == round(each * len(requests), 6) > 0
    assert outcome.prompt_tokens == 120 * len(requests)
    assert outcome.cost_eur == llm["cost_eur"]
    called = {
        c["function"]["name"]
        for r in requests
        for m in r.body["messages"]
        for c in m.get("tool_calls") or []
    }
    assert {"workflow_analyzer", "bottleneck_detector", "automation_recommender"} <= called
    assert all(r.body.get("model") == "gpt-4o-mini" for r in requests)
    assert outcome.result["quality"]["ungrounded_numbers_removed"] == 0
    summary = outcome.result["analysis"]["summary"]
    assert summary["headline"] == Writer("optimization_review").analysis.findings[0].title
    assert "## Notes from Your AI Team" in outcome.report_markdown


async def test_hierarchical_crew_delegates_over_http(fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    fakes[0].responder = delegating(Writer("process_analysis"))
    outcome = await run(fakes, "process_analysis", chain_settings(f"{FIRST},pattern"))
    check_result(outcome.result)
    assert outcome.provider == FIRST
    delegations = [
        json.loads(c["function"]["arguments"])["coworker"]
        for r in fakes[0].completions
        for m in r.body["messages"]
        if m.get("role") == "assistant"
        for c in m.get("tool_calls") or []
        if c["function"]["name"] == "delegate_work_to_coworker"
    ]
    assert "Business Process Optimization Expert" in delegations


@pytest.mark.parametrize("failure", ["500", "429"])
async def test_failing_provider_falls_back_to_the_next_within_the_attempt(
    fakes: tuple[FakeOpenAI, FakeOpenAI], failure: str
) -> None:
    reply = Reply.error(500) if failure == "500" else Reply.error(429, retry_after=0)
    fakes[0].script(*[reply] * 50)
    fakes[1].responder = cooperative(Writer("trend_analysis"))
    settings = chain_settings(f"{FIRST},{SECOND},pattern")
    outcome = await run(fakes, "trend_analysis", settings)
    check_result(outcome.result)
    assert len(fakes[0].completions) == 1, "one request, then the next provider"
    assert outcome.provider == SECOND
    assert outcome.degraded is True
    assert outcome.result["llm"]["tried"] == [FIRST, SECOND]


async def test_timeouts_everywhere_end_with_the_pattern(
    fakes: tuple[FakeOpenAI, FakeOpenAI],
) -> None:
    fakes[0].script(*[Reply.slow(2.0)] * 5)
    fakes[1].script(*[Reply.error(503)] * 5)
    settings = chain_settings(f"{FIRST},{SECOND},pattern", llm_timeout_s=0.3)
    outcome = await run(fakes, "data_interpretation", settings)
    check_result(outcome.result)
    llm = outcome.result["llm"]
    assert (llm["provider"], llm["degraded"]) == ("pattern", True)
    assert llm["tried"] == [FIRST, SECOND]
    assert llm["tokens"] == {"prompt": 0, "completion": 0}
    assert len(fakes[0].completions) == 1
    assert len(fakes[1].completions) == 1


async def test_a_planted_wrong_number_is_caught_by_the_quality_review(
    fakes: tuple[FakeOpenAI, FakeOpenAI],
) -> None:
    fakes[0].responder = cooperative(Writer("optimization_review", plant=True))
    outcome = await run(fakes, "optimization_review", chain_settings(f"{FIRST},pattern"))
    quality = outcome.result["quality"]
    assert quality["ungrounded_numbers_removed"] == 1
    assert "999.9" not in outcome.result["analysis"]["summary"]["executive_summary"]
    assert "999.9" not in outcome.report_markdown
    assert "Fix this first." in outcome.result["analysis"]["summary"]["executive_summary"]
    assert "one figure in the draft could not be traced" in outcome.report_markdown


async def test_react_text_is_understood_as_a_tool_call(
    fakes: tuple[FakeOpenAI, FakeOpenAI],
) -> None:
    fakes[0].responder = cooperative(Writer("trend_analysis"))
    fakes[0].script(Reply.react("Data Processor"))
    outcome = await run(fakes, "trend_analysis", chain_settings(f"{FIRST},pattern"))
    second = fakes[0].completions[1].body["messages"]
    assert any(m.get("role") == "tool" for m in second), "the ReAct action ran as a tool"
    assert outcome.provider == FIRST


async def test_confidential_data_never_reaches_a_cloud_provider(
    fakes: tuple[FakeOpenAI, FakeOpenAI],
) -> None:
    settings = chain_settings(f"{FIRST},{SECOND},pattern")
    outcome = await run(fakes, "process_analysis", settings, sensitivity="confidential")
    check_result(outcome.result)
    assert fakes[0].requests == []
    assert fakes[1].requests == []
    llm = outcome.result["llm"]
    assert (llm["provider"], llm["degraded"], llm["tried"]) == ("pattern", False, [])
    assert llm["skipped"] == [
        {"provider": FIRST, "reason": "confidential"},
        {"provider": SECOND, "reason": "confidential"},
    ]
