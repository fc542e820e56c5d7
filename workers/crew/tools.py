"""Thin CrewAI tools over ``workers.analytics``: compact JSON an AI Assistant can cite.

Every analytics tool answers from the one analysis the job already ran (the toolkit is
seeded with it), so calling tools costs no extra computation and returns exactly the
numbers in the result. The Quality Reviewer's ``number_checker`` runs the grounding check.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from crewai.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from workers.analytics import toolkit as analytics_toolkit
from workers.analytics.report import AnalyticsReport
from workers.narration import grounding

MAX_CHARS: Final = 12_000
"""Tool answers beyond this are shortened (long lists trimmed) to keep prompts small."""

_DESCRIPTIONS: Final = {
    "data_analyzer": "Column profiles, data quality, anomalies and correlations of the data.",
    "kpi_calculator": "Every KPI of the data with its unit and formula, plus KPI alerts.",
    "trend_identifier": "Trends, level shifts, seasonality, anomalies and forecasts of series.",
    "workflow_analyzer": "Process KPIs, statistics per Process Step and the most common paths.",
    "bottleneck_detector": "Bottlenecks, failing Process Steps and rework loops, with evidence.",
    "automation_recommender": "Automation candidates with hours and money saved and payback.",
    "data_processor": "What the data is: formats, sizes, fields and their quality.",
    "pattern_recognizer": "Recurring patterns: seasonality, correlations, anomalies, variants.",
    "insight_extractor": "The most important findings, the recommendations and the roadmap.",
}


class FocusArgs(BaseModel):
    """Optional focus; the tools always answer for the whole dataset."""

    model_config = ConfigDict(extra="ignore")
    focus: str | None = Field(None, description="Optional metric or Process Step of interest")


class TextArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str = Field(..., description="The draft text whose numbers to check")


class AnalyticsTool(BaseTool):
    """One analytics tool bound to one job's analysis."""

    args_schema: type[BaseModel] = FocusArgs
    _answer: Callable[[], dict[str, Any]] = PrivateAttr()

    def _run(self, focus: str | None = None, **_: Any) -> str:
        return compact_json(self._answer())


class NumberChecker(BaseTool):
    """The grounding check as a tool for the Quality Reviewer."""

    name: str = "number_checker"
    description: str = (
        "Checks every number in a text against the computed facts; returns the numbers that "
        "cannot be traced to a KPI, a finding's evidence or an estimated saving."
    )
    args_schema: type[BaseModel] = TextArgs
    _facts: grounding.Facts = PrivateAttr()

    def _run(self, text: str = "", **_: Any) -> str:
        bad = grounding.ungrounded(text, self._facts)
        verdict = "all numbers are supported" if not bad else "remove or correct these numbers"
        return json.dumps({"ungrounded": bad, "ungrounded_count": len(bad), "verdict": verdict})


def build(report: AnalyticsReport, data: dict[str, Any], analysis_type: str) -> dict[str, BaseTool]:
    """Every tool of one job, by name."""
    kit = analytics_toolkit.Toolkit(data, analysis_type)
    kit.__dict__["outcome"] = report  # seed the cached analysis: tools answer from this run's
    tools: dict[str, BaseTool] = {}
    for name in analytics_toolkit.TOOL_NAMES:
        tool = AnalyticsTool(name=name, description=_DESCRIPTIONS.get(name, name))
        tool._answer = _caller(kit, name)
        tools[name] = tool
    checker = NumberChecker()
    checker._facts = grounding.Facts.of(report.analysis)
    tools[checker.name] = checker
    return tools


def _caller(kit: analytics_toolkit.Toolkit, name: str) -> Callable[[], dict[str, Any]]:
    return lambda: kit.call(name)


def compact_json(payload: Any, max_chars: int = MAX_CHARS) -> str:
    """JSON without spaces; long lists are trimmed until the text fits."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)
    limit = 20
    while len(text) > max_chars and limit >= 2:
        text = json.dumps(_trim(payload, limit), separators=(",", ":"), default=str)
        limit //= 2
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def _trim(node: Any, limit: int) -> Any:
    if isinstance(node, dict):
        return {k: _trim(v, limit) for k, v in node.items()}
    if isinstance(node, list):
        items = [_trim(v, limit) for v in node[:limit]]
        if len(node) > limit:
            items.append(f"... {len(node) - limit} more")
        return items
    return node
