"""The pattern LLM's moves: each task's tools once, then the narrator's answer; the team lead
delegates to the right colleague; cloud replies in ReAct form become tool calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bi_engine.domain.result import Analysis
from workers.crew import llm
from workers.crew.agents import SPECS
from workers.crew.errors import Aborted
from workers.narration.chain import Completion, ToolCall
from workers.narration.pattern import PatternNarrator

pytestmark = pytest.mark.unit


def tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {}}}


@pytest.fixture
def brain() -> llm.PatternBrain:
    narrator = PatternNarrator(Analysis(), analysis_type="process_analysis", facts={})
    roles = {s.role: s.key for s in SPECS.values()}
    return llm.PatternBrain(
        narrator, roles=roles, fallback={"process_optimizer": "identify_optimization_opportunities"}
    )


def ask(
    brain: llm.PatternBrain, messages: list[dict[str, Any]], tools: list[str], **kw: Any
) -> Any:
    return brain.answer(
        messages,
        [tool(t) for t in tools],
        task_name=kw.get("task"),
        task_text=kw.get("text", ""),
        role=kw.get("role"),
    )


def called(name: str) -> dict[str, Any]:
    return {"role": "assistant", "tool_calls": [{"function": {"name": name, "arguments": "{}"}}]}


def test_worker_calls_each_tool_once_then_answers(brain: llm.PatternBrain) -> None:
    tools = ["workflow_analyzer", "bottleneck_detector", "automation_recommender"]
    user = [{"role": "user", "content": "go"}]
    first = ask(brain, user, tools, task="identify_optimization_opportunities")
    assert first[0]["function"]["name"] == "workflow_analyzer"
    history = [*user, called("workflow_analyzer"), {"role": "tool", "content": "{}"}]
    second = ask(brain, history, tools, task="identify_optimization_opportunities")
    assert second[0]["function"]["name"] == "bottleneck_detector"
    history += [called("bottleneck_detector"), called("automation_recommender")]
    final = ask(brain, history, tools, task="identify_optimization_opportunities")
    assert isinstance(final, str)
    assert "Your Processes" in final


def test_lead_delegates_then_hands_on_the_answer(brain: llm.PatternBrain) -> None:
    tools = ["delegate_work_to_coworker", "ask_question_to_coworker"]
    move = ask(brain, [{"role": "user", "content": "x"}], tools, task="recommend_optimizations")
    args = json.loads(move[0]["function"]["arguments"])
    assert args["coworker"] == "Business Process Optimization Expert"
    assert "[ref:recommend_optimizations]" in args["task"]
    answer = ask(
        brain,
        [{"role": "user", "content": "x"}, {"role": "tool", "content": "Colleague's work."}],
        tools,
        task="recommend_optimizations",
    )
    assert answer == "Colleague's work."


def test_delegated_task_is_recognised_by_its_marker_or_the_agent(brain: llm.PatternBrain) -> None:
    found = brain.resolve(None, "Do it [ref:technical_notes]: ...", [], None)
    assert found is not None
    assert found.key == "technical_notes"
    by_role = brain.resolve(None, "free text", [], "Business Process Optimization Expert")
    assert by_role is not None
    assert by_role.key == "identify_optimization_opportunities"


def test_reviewer_reports_what_the_checker_found(brain: llm.PatternBrain) -> None:
    history = [
        {"role": "user", "content": "Review.\n\nThis is the context you're working with:\nA 9."},
        called("number_checker"),
        {"role": "tool", "content": json.dumps({"ungrounded_count": 2})},
    ]
    note = ask(brain, history, ["number_checker"], task="quality_review")
    assert "two figures" in note
    first = ask(brain, history[:1], ["number_checker"], task="quality_review")
    assert json.loads(first[0]["function"]["arguments"]) == {"text": "\nA 9."}


def test_react_and_final_answer_text_from_a_provider() -> None:
    react = Completion("p", 'Thought: x\nAction: Kpi Calculator\nAction Input: {"focus": "a"}')
    call: Any = llm._to_crewai(react, [tool("kpi_calculator")])
    assert call[0]["function"] == {"name": "kpi_calculator", "arguments": '{"focus": "a"}'}
    final = Completion("p", "Thought: done\nFinal Answer: The answer.")
    assert llm._to_crewai(final, []) == "The answer."
    native = Completion("p", "", (ToolCall("c1", "kpi_calculator", "{}"),))
    calls: Any = llm._to_crewai(native, [])
    assert calls[0]["id"] == "c1"


def test_abort_signal_raises_a_base_exception() -> None:
    signal = llm.AbortSignal()
    signal.check()
    signal.set("timeout")
    with pytest.raises(BaseException) as caught:
        signal.check()
    assert isinstance(caught.value, Aborted)
    assert caught.value.reason == "timeout"
