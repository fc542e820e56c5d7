"""Every AI Team, offline: the pattern LLM drives the real crews with native tool calls.

No network and no database: the full result of CONTRACT section 5 for every analysis type,
deterministic, with monotonic business-word progress and every number grounded.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.unit.crew.support import (
    ANALYSIS_TYPES,
    RecordingSink,
    body_for,
    check_result,
    context,
)
from workers.analytics import InvalidData
from workers.crew.runner import CrewRunner
from workers.job import AnalysisOutcome
from workers.narration import grounding

pytestmark = pytest.mark.unit

TECHNICAL_WORDS = re.compile(r"\b(nodes?|workflows?|executions?|crews?|tokens?)\b", re.IGNORECASE)


async def run(analysis_type: str, **kwargs: Any) -> tuple[AnalysisOutcome, RecordingSink]:
    sink = RecordingSink()
    outcome = await CrewRunner()(context(analysis_type, **kwargs), sink)
    return outcome, sink


@pytest.mark.parametrize("analysis_type", ANALYSIS_TYPES)
async def test_every_type_produces_the_full_result_offline(analysis_type: str) -> None:
    outcome, sink = await run(analysis_type)
    analysis = check_result(outcome.result)
    llm = outcome.result["llm"]
    assert (outcome.provider, outcome.degraded) == ("pattern", False)
    assert llm["provider"] == "pattern"
    assert llm["tried"] == []
    assert llm["tokens"] == {"prompt": 0, "completion": 0}
    assert llm["cost_eur"] == 0.0
    assert outcome.headline == analysis.summary.headline
    assert outcome.report_markdown == outcome.result["report_markdown"]
    assert outcome.result["quality"]["ungrounded_numbers_removed"] == 0
    assert outcome.result["quality"]["ungrounded_numbers_corrected"] == 0
    facts = grounding.Facts.of(analysis)
    assert grounding.ungrounded(outcome.report_markdown, facts) == []
    assert grounding.ungrounded(analysis.summary.executive_summary, facts) == []
    assert sink.percents == sorted(sink.percents)
    assert max(sink.percents) < 100
    assert all(m.startswith("Your AI Team") for _, _, m, _ in sink.updates)


async def test_process_analysis_is_led_by_the_business_analyst() -> None:
    outcome, sink = await run("process_analysis")
    team = outcome.result["team"]
    assert team[0]["agent"] == "Senior Business Performance Analyst, team lead"
    assert team[0]["tasks"] == 7
    roles = {m["agent"] for m in team}
    assert {
        "Senior Business Performance Analyst",
        "Business Process Optimization Expert",
        "Business Data Intelligence Specialist",
        "Executive Writer",
        "Technical Writer",
        "Business Translator",
        "Quality Reviewer",
    } <= roles
    messages = [m for _, _, m, _ in sink.updates]
    assert "Your AI Team: the Process Optimization Expert is looking for bottlenecks..." in messages
    assert any("handing the Processing Task to a colleague" in m for m in messages)


async def test_report_reads_like_a_business_report() -> None:
    outcome, _ = await run("optimization_review")
    report = outcome.report_markdown
    for section in (
        "## Executive summary",
        "## Key figures",
        "## Findings",
        "## Recommendations",
        "## Implementation roadmap",
        "## What this means for your business",
        "## Technical notes",
        "## Quality review",
    ):
        assert section in report
    analysis = outcome.result["analysis"]
    assert analysis["findings"][0]["title"] in report
    assert analysis["summary"]["headline"] == analysis["findings"][0]["title"]
    translation = report.split("## What this means for your business", 1)[1].split("\n## ")[0]
    assert not TECHNICAL_WORDS.search(translation)


async def test_custom_analysis_answers_the_question() -> None:
    outcome, _ = await run("custom_analysis")
    assert "## Your question" in outcome.report_markdown
    assert "Where do invoices wait" in outcome.report_markdown
    assert "The question was" in outcome.result["analysis"]["summary"]["executive_summary"]


async def test_offline_runs_are_deterministic() -> None:
    first, _ = await run("trend_analysis")
    second, _ = await run("trend_analysis")
    assert first.result == second.result


async def test_confidential_offline_run_is_not_degraded() -> None:
    outcome, _ = await run("data_interpretation", sensitivity="confidential")
    assert outcome.result["llm"]["provider"] == "pattern"
    assert outcome.result["llm"]["degraded"] is False


async def test_invalid_data_raises_the_analytics_error() -> None:
    body = {"data": {"nothing": 1}}
    with pytest.raises(InvalidData) as caught:
        await run("process_analysis", body=body)
    assert caught.value.code == "invalid_data"
    assert caught.value.details()


async def test_a_saved_template_drives_a_custom_analysis() -> None:
    body = body_for("custom_analysis")
    body["data"] = {k: v for k, v in body["data"].items() if k != "question"}
    ctx = context("custom_analysis", body=body)
    ctx.options["template"] = {
        "name": "Monthly invoice review",
        "question": "Which Process Step should we automate first?",
        "config": {"metrics_focus": ["cycle_time"], "context": "Finance operations"},
    }
    outcome = await CrewRunner()(ctx, RecordingSink())
    check_result(outcome.result)
    assert "Which Process Step should we automate first?" in outcome.report_markdown
    assert outcome.result["analysis"]["kpis"][0]["name"].endswith("cycle_time")
