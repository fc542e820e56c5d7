"""The Quality Reviewer's check: computed numbers pass (as shown), invented ones are caught."""

from __future__ import annotations

import pytest

from bi_engine.domain.result import KPI, Analysis, Finding, Recommendation, RoadmapPhase
from workers.narration import grounding

pytestmark = pytest.mark.unit


@pytest.fixture
def facts() -> grounding.Facts:
    analysis = Analysis(
        kpis=[
            KPI(name="median_cycle_time", value=41.53, unit="hours"),
            KPI(name="success_rate", value=0.745, unit="ratio"),
            KPI(name="sales", value=1_950_000.0),
            KPI(name="change_pct", value=-12.3, unit="%"),
            KPI(name="revenue_forecast", value=1.0, label="Forecast for 2026-07-15"),
        ],
        findings=[
            Finding(
                kind="bottleneck",
                subject="Step 2 approval",
                title="Step 2 approval is the bottleneck",
                evidence={"share_of_cycle_time": 0.623, "date": "2026-04-17", "runs": 149},
            )
        ],
        recommendations=[
            Recommendation(title="Automate", estimated_savings={"hours_per_month": 13.58})
        ],
        roadmap=[RoadmapPhase(phase=1, items=["Automate"]), RoadmapPhase(phase=2, items=["x"])],
    )
    return grounding.Facts.of(analysis)


@pytest.mark.parametrize(
    "text",
    [
        "The median cycle time is 41.53 hours.",
        "The median cycle time is 41.5 hours.",  # rounded as shown
        "The median cycle time is about 42 hours.",
        "Only 74.5% of runs succeed.",  # a fraction written as a percentage
        "Approval takes 62.3% of the cycle time.",
        "Sales reached 1,950,000.",
        "Sales reached 1.95 million.",
        "Revenue fell 12.3% over the period.",  # sign dropped in words
        "The level shifted on 2026-04-17.",
        "Step 2 approval is where work waits.",  # a name, not a figure
        "Phase 2 can start once phase 1 is done.",
        "1. Automate first\n2. Then relieve approval",  # list markers
        "It saves 13.58 hours a month across 149 runs.",
    ],
)
def test_computed_numbers_pass(text: str, facts: grounding.Facts) -> None:
    result = grounding.ground(text, facts)
    assert result.issues == []
    assert result.text == text.strip()


def test_a_planted_wrong_number_is_removed_with_its_sentence(facts: grounding.Facts) -> None:
    text = "Approval takes 62.3% of the cycle time. The median cycle time is 99.9 hours. Act now."
    result = grounding.ground(text, facts)
    assert result.removed == 1
    assert result.corrected == 0
    assert "99.9" not in result.text
    assert result.text == "Approval takes 62.3% of the cycle time. Act now."


def test_a_near_miss_is_corrected_to_the_computed_value(facts: grounding.Facts) -> None:
    result = grounding.ground("Approval takes 61.9% of the cycle time.", facts)
    assert result.corrected == 1
    assert result.removed == 0
    assert result.text == "Approval takes 62.3% of the cycle time."


def test_rounding_must_match_what_is_shown(facts: grounding.Facts) -> None:
    assert grounding.ungrounded("about 40 hours", facts) == ["40"]
    assert grounding.ungrounded("about 41.6 hours", facts) == ["41.6"]


def test_unknown_dates_and_digits_in_units_are_checked(facts: grounding.Facts) -> None:
    assert grounding.ungrounded("It changed on 2025-01-09.", facts)
    assert grounding.ungrounded("It takes 99h.", facts) == ["99"]


def test_bullet_emptied_by_a_removal_disappears(facts: grounding.Facts) -> None:
    text = "- Approval takes 62.3% of the time.\n- Costs rose 777 percent.\n- Act now."
    result = grounding.ground(text, facts)
    assert result.text == "- Approval takes 62.3% of the time.\n- Act now."
    assert result.checked == 2


def test_the_users_question_may_be_quoted() -> None:
    facts = grounding.Facts.of(Analysis(), extra_text=["Why did Q3 sales drop 20%?"])
    assert grounding.ungrounded("You asked why sales dropped 20%.", facts) == []
