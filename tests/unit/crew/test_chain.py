"""BI_LLM_CHAIN over real HTTP: one request per provider, fallback on 5xx/429/timeout,
sticky per job, breakers across jobs, confidential and budget limits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from bi_engine.settings import Settings
from tests.fakes.openai_server import FakeOpenAI, Reply, serve
from workers.narration import chain
from workers.narration.accounting import Ledger
from workers.narration.breaker import BreakerBoard

pytestmark = pytest.mark.unit

FIRST = "openai/gpt-4o-mini"
SECOND = "openai/gpt-4.1-mini"
MESSAGES = [{"role": "user", "content": "Summarise the figures."}]


@pytest.fixture
def fakes() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    with serve() as one, serve() as two:
        yield one, two


def settings(chain_text: str, **extra: Any) -> Settings:
    return Settings(llm_chain=chain_text, openai_api_key="sk-test", **extra)


def session(
    fakes: tuple[FakeOpenAI, FakeOpenAI],
    *,
    timeout_s: float = 5.0,
    board: BreakerBoard | None = None,
    sensitivity: str = "normal",
) -> chain.ChainSession:
    plan = chain.plan_chain(
        settings(f"{FIRST},{SECOND},pattern"),
        sensitivity=sensitivity,
        base_urls={FIRST: fakes[0].base_url, SECOND: fakes[1].base_url},
    )
    return chain.ChainSession(
        plan, breakers=board or BreakerBoard(), ledger=Ledger(), timeout_s=timeout_s
    )


def test_plan_keeps_only_local_providers_for_confidential_data() -> None:
    config = settings("openai/gpt-4o-mini,anthropic/claude-3-5-haiku-latest,ollama/llama3.1")
    plan = chain.plan_chain(config, sensitivity="confidential")
    assert [p.name for p in plan.providers] == ["ollama/llama3.1"]
    assert [(s.provider, s.reason) for s in plan.skipped] == [
        ("openai/gpt-4o-mini", "confidential"),
        ("anthropic/claude-3-5-haiku-latest", "confidential"),
    ]
    assert plan.configured[-1] == "pattern"


def test_plan_over_budget_uses_local_providers_only() -> None:
    config = settings("openai/gpt-4o-mini,ollama/llama3.1,pattern", ollama_host="http://h:11434")
    plan = chain.plan_chain(config, over_budget=True)
    assert [(p.name, p.api_base) for p in plan.providers] == [("ollama/llama3.1", "http://h:11434")]
    assert plan.skipped[0].reason == "budget"


def test_plan_of_pattern_alone_prefers_pattern() -> None:
    assert chain.plan_chain(Settings(llm_chain="pattern")).preferred == "pattern"


def test_success_is_one_request_with_usage_and_cost(fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    fakes[0].script(
        Reply.final("Cycle time is the issue.", prompt_tokens=200, completion_tokens=50)
    )
    s = session(fakes)
    answer = s.complete(MESSAGES, None)
    assert answer is not None
    assert answer.provider == FIRST
    assert answer.text.startswith("Cycle")
    assert len(fakes[0].completions) == 1
    assert fakes[0].completions[0].headers["Authorization"]
    [record] = s.ledger.records
    assert (record.outcome, record.prompt_tokens, record.completion_tokens) == ("success", 200, 50)
    assert record.cost_eur > 0


def test_tool_calls_come_back_as_tool_calls(fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    fakes[0].script(Reply.call("kpi_calculator", {"focus": "cycle_time"}))
    tools = [{"type": "function", "function": {"name": "kpi_calculator", "parameters": {}}}]
    answer = session(fakes).complete(MESSAGES, tools)
    assert answer is not None
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [
        ("kpi_calculator", '{"focus": "cycle_time"}')
    ]
    assert fakes[0].completions[0].body["tools"] == tools


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [(Reply.error(500), "error"), (Reply.error(429, retry_after=0), "rate_limited")],
)
def test_failure_moves_on_to_the_next_provider_at_once(
    fakes: tuple[FakeOpenAI, FakeOpenAI], reply: Reply, outcome: str
) -> None:
    fakes[0].script(reply, reply, reply)
    s = session(fakes)
    answer = s.complete(MESSAGES, None)
    assert answer is not None
    assert answer.provider == SECOND
    assert len(fakes[0].completions) == 1, "no retry multiplication"
    assert [r.outcome for r in s.ledger.records] == [outcome, "success"]
    s.complete(MESSAGES, None)
    assert len(fakes[0].completions) == 1, "a failed provider is not asked again in this job"
    assert len(fakes[1].completions) == 2


def test_timeout_moves_on_within_the_timeout(fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    fakes[0].script(Reply.slow(3.0))
    s = session(fakes, timeout_s=0.3)
    started = time.monotonic()
    answer = s.complete(MESSAGES, None)
    assert time.monotonic() - started < 2.5
    assert answer is not None
    assert answer.provider == SECOND
    assert s.ledger.records[0].outcome == "timeout"


def test_everything_failing_leaves_it_to_the_pattern(fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    fakes[0].script(Reply.error(503))
    fakes[1].script(Reply.error(500))
    s = session(fakes)
    assert s.complete(MESSAGES, None) is None
    assert s.exhausted
    assert s.complete(MESSAGES, None) is None
    assert len(fakes[0].completions) == len(fakes[1].completions) == 1


def test_breaker_skips_a_failing_provider_across_jobs(fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    board = BreakerBoard(threshold=2, cooldown_s=60)
    fakes[0].script(Reply.error(500), Reply.error(500))
    for _ in range(2):
        session(fakes, board=board).complete(MESSAGES, None)
    third = session(fakes, board=board)
    answer = third.complete(MESSAGES, None)
    assert answer is not None
    assert answer.provider == SECOND
    assert len(fakes[0].completions) == 2, "the open circuit sent nothing"
    assert third.ledger.skipped() == [{"provider": FIRST, "reason": "circuit_open"}]


def test_confidential_jobs_send_nothing_to_the_cloud(fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    s = session(fakes, sensitivity="confidential")
    assert s.complete(MESSAGES, None) is None
    assert fakes[0].completions == []
    assert fakes[1].completions == []
    assert {r["reason"] for r in s.ledger.skipped()} == {"confidential"}


def test_bad_requests_do_not_trip_the_breaker() -> None:
    class Status(Exception):
        status_code = 400

    assert not chain.classify(Status("context too long")).trips_breaker
    assert chain.classify(TimeoutError()).outcome == "timeout"
