"""The Processing Tasks of the AI Teams: what each one asks, of whom, with which tools.

Plain data (no crewai here), so the teams, the pattern LLM and the progress messages all
read the same definitions. ``uses`` are the tools the pattern LLM calls for the task (a
cloud model may call any tool its AI Assistant has).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bi_engine.domain import vocabulary as v


@dataclass(frozen=True, slots=True)
class Assignment:
    key: str
    agent: str
    """The key of the AI Assistant (``bi_engine.domain.vocabulary.Agent.key``)."""
    title: str
    activity: str
    """What the assistant is doing, for progress: "is looking for bottlenecks"."""
    brief: str
    expected_output: str
    uses: tuple[str, ...] = ()
    report: bool = False
    """Part of the Report team's work (runs after every analysis Processing Task)."""

    def marker(self) -> str:
        """A reference the pattern LLM recognises in a delegated task's text."""
        return f"[ref:{self.key}]"


_NUMBERS_RULE = (
    "Quote only numbers that your tools or the facts below return, exactly as they appear "
    "(you may write fractions as percentages). Never estimate or invent a figure."
)
_WORDS_RULE = (
    "Write for business readers: say Process Steps, Process Runs and Your Processes, not "
    "nodes, executions and workflows."
)

ASSIGNMENTS: Final[dict[str, Assignment]] = {
    a.key: a
    for a in (
        Assignment(
            "analyse_current_performance",
            v.BUSINESS_ANALYST.key,
            "Analyse current performance",
            "is measuring how Your Processes perform",
            "Analyse the current performance shown by the data. Provide: a current performance "
            "summary, the key performance indicators, the figures outside their healthy range "
            f"and their business impact. {_NUMBERS_RULE}",
            "A short performance summary with the key figures and what stands out.",
            uses=("kpi_calculator",),
        ),
        Assignment(
            "identify_optimization_opportunities",
            v.PROCESS_OPTIMIZER.key,
            "Identify optimisation opportunities",
            "is looking for bottlenecks",
            "Identify the bottlenecks, failing Process Steps, rework loops and automation "
            "opportunities, and estimate the effort and saving of each. "
            f"{_NUMBERS_RULE} {_WORDS_RULE}",
            "The optimisation opportunities, each with its evidence, effort and saving.",
            uses=("workflow_analyzer", "bottleneck_detector", "automation_recommender"),
        ),
        Assignment(
            "generate_implementation_roadmap",
            v.DATA_INTELLIGENCE.key,
            "Generate the implementation roadmap",
            "is ordering the recommendations into a roadmap",
            "Turn the recommendations into an implementation roadmap: quick wins first, then "
            f"the larger changes, with the first step to take. {_NUMBERS_RULE}",
            "The roadmap by phase, and the first step.",
            uses=("insight_extractor",),
        ),
        Assignment(
            "map_process_performance",
            v.PROCESS_OPTIMIZER.key,
            "Map process performance",
            "is mapping where Your Processes lose time",
            "Map how the Process Runs perform: cycle times, success rate, cost, and the "
            f"Process Steps where time and runs are lost. {_NUMBERS_RULE} {_WORDS_RULE}",
            "Process performance with the bottlenecks and failing Process Steps.",
            uses=("workflow_analyzer", "bottleneck_detector"),
        ),
        Assignment(
            "recommend_optimizations",
            v.PROCESS_OPTIMIZER.key,
            "Recommend optimisations",
            "is looking for automation opportunities",
            "Recommend the optimisations worth making, most valuable first, with effort, "
            f"saving and payback. {_NUMBERS_RULE} {_WORDS_RULE}",
            "Recommended optimisations in priority order.",
            uses=("automation_recommender",),
        ),
        Assignment(
            "interpret_data",
            v.DATA_INTELLIGENCE.key,
            "Interpret the data",
            "is looking for patterns in your data",
            "Interpret the dataset: what it contains, how clean it is, the outliers, the "
            f"relationships between fields and the groups that differ most. {_NUMBERS_RULE}",
            "What the data says, with its quality and strongest patterns.",
            uses=("data_processor", "pattern_recognizer"),
        ),
        Assignment(
            "identify_trends",
            v.DATA_INTELLIGENCE.key,
            "Identify patterns and trends",
            "is looking for trends and patterns",
            "Identify the direction of each series, level shifts, seasonality and anomalies, "
            f"and the short-term outlook. {_NUMBERS_RULE}",
            "The trends, shifts, cycles and anomalies with their evidence.",
            uses=("data_processor", "pattern_recognizer"),
        ),
        Assignment(
            "assess_business_impact",
            v.BUSINESS_ANALYST.key,
            "Assess the business impact",
            "is assessing the business impact",
            "Assess what these findings mean for the business: the derived business figures, "
            f"the risks and opportunities, and what to do about them. {_NUMBERS_RULE}",
            "The business impact and the actions it calls for.",
            uses=("kpi_calculator", "trend_identifier"),
        ),
        Assignment(
            "answer_question",
            v.BUSINESS_ANALYST.key,
            "Answer your question",
            "is answering your question",
            "Answer the question asked, using the findings of Your AI Team and the facts "
            f"below; say plainly when the data cannot answer it. {_NUMBERS_RULE}",
            "A direct answer to the question, with the supporting figures.",
            uses=("kpi_calculator",),
        ),
        Assignment(
            "executive_summary",
            v.EXECUTIVE_WRITER.key,
            "Write the executive summary",
            "is writing the executive summary",
            "Write the executive summary for C-level readers. Start with one line "
            "'Headline: <the single most important message>', then two or three short "
            "paragraphs: the situation, what matters most, what to do first. "
            f"{_NUMBERS_RULE} {_WORDS_RULE}",
            "'Headline: ...' on the first line, then the executive summary.",
            report=True,
        ),
        Assignment(
            "technical_notes",
            v.TECHNICAL_WRITER.key,
            "Write the technical notes",
            "is documenting how the figures were computed",
            "Write short technical notes for the people who will implement the changes: the "
            "data used, how the key figures are computed, and how strong the statistical "
            f"support for each finding is. {_NUMBERS_RULE}",
            "Technical notes: data, formulas, statistical support.",
            report=True,
        ),
        Assignment(
            "business_translation",
            v.BUSINESS_TRANSLATOR.key,
            "Translate into business terms",
            "is translating the findings into business terms",
            "Explain in plain business language what the findings mean for the company and "
            f"what to do next. {_WORDS_RULE} {_NUMBERS_RULE}",
            "What this means for the business, and what to do next.",
            report=True,
        ),
        Assignment(
            "quality_review",
            v.QUALITY_REVIEWER.key,
            "Review the report",
            "is checking every figure against the facts",
            "Review the draft report of Your AI Team. Check every number in it with the "
            "number_checker tool. Answer with a one-paragraph review note; if a section needs "
            "changes, add the corrected section under its heading ('## Executive summary', "
            "'## Technical notes' or '## What this means for your business').",
            "A review note, then any corrected sections under their headings.",
            uses=("number_checker",),
            report=True,
        ),
    )
}

REPORT_TEAM: Final = (
    "executive_summary",
    "technical_notes",
    "business_translation",
    "quality_review",
)
