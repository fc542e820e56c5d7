"""From the team's answers to the report's words: headline parsing, the reviewer's corrected
sections, pattern fallbacks for missing sections, and plain-language prose."""

from __future__ import annotations

import re

import pytest

from bi_engine.domain.result import Analysis
from tests.unit.crew.support import body_for
from workers.analytics import analyze
from workers.narration import grounding, narrative
from workers.narration.pattern import PatternNarrator, count_words, kpi_value, number

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def process() -> tuple[Analysis, PatternNarrator]:
    report = analyze("process_analysis", body_for("process_analysis")["data"])
    narrator = PatternNarrator(
        report.analysis, analysis_type="process_analysis", facts=report.facts
    )
    return report.analysis, narrator


@pytest.mark.parametrize(
    ("text", "headline", "rest"),
    [
        ("Headline: Approval is slow\n\nBody.", "Approval is slow", "Body."),
        ("**Headline:** Approval is slow.\nBody.", "Approval is slow", "Body."),
        ("## Headline: Approval is slow\nBody.", "Approval is slow", "Body."),
        ("No headline here.\nBody.", None, "No headline here.\nBody."),
    ],
)
def test_split_headline(text: str, headline: str | None, rest: str) -> None:
    assert narrative.split_headline(text) == (headline, rest)


def test_split_review_takes_corrected_sections() -> None:
    note, sections = narrative.split_review(
        "All good but one.\n\n## Executive summary\nHeadline: New\n\nBetter.\n"
        "## What this means for your business\nPlain words."
    )
    assert note == "All good but one."
    assert sections == {
        "executive_summary": "Headline: New\n\nBetter.",
        "business_translation": "Plain words.",
    }


def test_reviewers_sections_replace_the_drafts(process: tuple[Analysis, PatternNarrator]) -> None:
    analysis, narrator = process
    top = analysis.findings[0]
    texts = {
        "executive_summary": "Headline: Draft headline\n\nDraft summary.",
        "quality_review": f"Checked.\n## Executive summary\nHeadline: {top.title}\n\n{top.detail}",
    }
    story = narrative.assemble(analysis, texts, narrator)
    assert story.headline == top.title
    assert story.summary == top.detail
    assert story.technical_notes == narrator.technical_notes(), "missing sections: the pattern"
    assert story.review_note == "Checked."


def test_empty_answers_fall_back_to_the_pattern(process: tuple[Analysis, PatternNarrator]) -> None:
    analysis, narrator = process
    story = narrative.assemble(analysis, {"executive_summary": "   "}, narrator)
    assert story.headline == narrator.headline()
    assert story.summary == narrator.executive_summary()


def test_pattern_prose_is_grounded_and_plain(process: tuple[Analysis, PatternNarrator]) -> None:
    analysis, narrator = process
    facts = grounding.Facts.of(analysis)
    for key in (
        "analyse_current_performance",
        "identify_optimization_opportunities",
        "generate_implementation_roadmap",
        "executive_summary",
        "technical_notes",
        "business_translation",
    ):
        text = narrator.write(key)
        assert text, key
        assert grounding.ungrounded(text, facts) == [], key
    summary = narrator.executive_summary()
    assert analysis.recommendations[0].title.lower() in summary.lower()
    assert "Manager approval" in narrator.headline()
    assert not re.search(r"\bnodes?\b|\bexecutions?\b", narrator.business_translation())


def test_an_analysis_with_nothing_found_still_reads_well() -> None:
    narrator = PatternNarrator(Analysis(), analysis_type="trend_analysis", facts={})
    assert narrator.headline() == "Trend Analysis: nothing in the data needs attention"
    assert "Nothing in the data calls for action" in narrator.executive_summary()
    assert narrator.write("identify_trends").startswith("Trends in the data you sent.")


def test_number_formatting() -> None:
    assert number(1950000.0) == "1,950,000"
    assert number(12487.6) == "12,487.6"
    assert number(0.0531) == "0.0531"
    assert number(12.82) == "12.82"
    assert count_words(3, "issue") == "three issues"
    assert count_words(12, "x") == "several xs"
    from bi_engine.domain.result import KPI

    assert kpi_value(KPI(name="success_rate", value=0.745, unit="ratio")) == "74.5%"
    assert kpi_value(KPI(name="margin_pct", value=20.0, unit="%")) == "20%"
    assert kpi_value(KPI(name="median_cycle_time", value=12.82, unit="hours")) == "12.82 hours"


def test_unfinished_tool_steps_never_reach_the_report(
    process: tuple[Analysis, PatternNarrator],
) -> None:
    analysis, narrator = process
    leftover = 'Thought: I need data\nAction: kpi_calculator\nAction Input: {"focus": ""}'
    story = narrative.assemble(
        analysis,
        {"executive_summary": leftover, "technical_notes": leftover},
        narrator,
        notes=[("Process Optimization Expert", "Map", leftover)],
    )
    assert story.summary == narrator.executive_summary()
    assert story.technical_notes == narrator.technical_notes()
    assert story.team_notes == []
