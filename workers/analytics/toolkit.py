"""The analytics as tools for the AI assistants: one function per tool name, each taking the
submitted ``data`` and returning a compact JSON-safe dict.

A ``Toolkit`` analyses the data once and answers every tool from that one report, so an
agent calling five tools costs one analysis.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from bi_engine.domain.result import Finding
from workers.analytics.engine import analyze
from workers.analytics.errors import InvalidData
from workers.analytics.report import AnalyticsReport

TOOL_NAMES = (
    "data_analyzer",
    "kpi_calculator",
    "trend_identifier",
    "workflow_analyzer",
    "bottleneck_detector",
    "automation_recommender",
    "data_processor",
    "pattern_recognizer",
    "insight_extractor",
)
TOP = 10


def _compact(f: Finding) -> dict[str, Any]:
    return {
        "kind": f.kind,
        "subject": f.subject,
        "title": f.title,
        "severity": f.severity,
        "confidence": f.confidence,
        "evidence": f.evidence,
    }


class Toolkit:
    """One submission's data, analysed lazily once, answered per tool."""

    def __init__(
        self,
        data: dict[str, Any],
        analysis_type: str = "custom_analysis",
        metrics_focus: list[str] | None = None,
    ) -> None:
        self.data = data
        self.analysis_type = analysis_type
        self.metrics_focus = metrics_focus

    @cached_property
    def outcome(self) -> AnalyticsReport | InvalidData:
        try:
            return analyze(self.analysis_type, self.data, metrics_focus=self.metrics_focus)
        except InvalidData as exc:
            return exc

    def call(self, name: str) -> dict[str, Any]:
        """Run the tool ``name``; invalid data answers with the problems and their locations."""
        if name not in TOOL_NAMES:
            return {"error": "unknown_tool", "tools": list(TOOL_NAMES)}
        outcome = self.outcome
        if isinstance(outcome, InvalidData):
            return {
                "error": InvalidData.code,
                "message": str(outcome),
                "problems": outcome.details(),
            }
        answer: dict[str, Any] = _TOOLS[name](outcome)
        return {"dataset": outcome.dataset, **answer}

    def __getattr__(self, name: str) -> Callable[[], dict[str, Any]]:
        if name in TOOL_NAMES:
            return lambda: self.call(name)
        raise AttributeError(name)


def _findings(report: AnalyticsReport, *kinds: str, top: int = TOP) -> list[dict[str, Any]]:
    found = [f for f in report.analysis.findings if not kinds or f.kind in kinds]
    return [_compact(f) for f in found[:top]]


def _data_analyzer(report: AnalyticsReport) -> dict[str, Any]:
    return {
        "table": report.facts.get("table"),
        "findings": _findings(report, "data_quality", "anomaly", "correlation"),
    }


def _kpi_calculator(report: AnalyticsReport) -> dict[str, Any]:
    return {
        "kpis": [k.model_dump() for k in report.analysis.kpis],
        "alerts": _findings(report, "kpi_alert"),
    }


def _trend_identifier(report: AnalyticsReport) -> dict[str, Any]:
    names = {s["name"] for s in report.facts.get("series", [])}
    found = [
        _compact(f)
        for f in report.analysis.findings
        if f.subject in names and f.kind in ("trend", "changepoint", "seasonality", "anomaly")
    ]
    return {"series": report.facts.get("series", []), "findings": found[: TOP * 2]}


def _workflow_analyzer(report: AnalyticsReport) -> dict[str, Any]:
    process = report.facts.get("process") or {}
    names = {
        "runs",
        "success_rate",
        "failed_runs",
        "median_cycle_time",
        "p90_cycle_time",
        "p95_cycle_time",
        "mean_cycle_time",
        "throughput_per_day",
        "cost_per_run",
        "variants",
        "top_variant_share",
        "steps",
        "mean_steps_per_run",
    }
    kpis = {
        k.name: {"value": k.value, "unit": k.unit} for k in report.analysis.kpis if k.name in names
    }
    return {
        "kpis": kpis,
        "steps": process.get("steps", []),
        "variants": process.get("variants", []),
        "unit": process.get("unit"),
    }


def _bottleneck_detector(report: AnalyticsReport) -> dict[str, Any]:
    return {
        "bottlenecks": _findings(report, "bottleneck"),
        "failure_hotspots": _findings(report, "failure_hotspot"),
        "rework": [
            f for f in _findings(report, "kpi_alert") if f["evidence"].get("pattern") == "rework"
        ],
    }


def _automation_recommender(report: AnalyticsReport) -> dict[str, Any]:
    candidates = _findings(report, "automation_candidate")
    subjects = {c["subject"] for c in candidates}
    recs = [
        r.model_dump()
        for r in report.analysis.recommendations
        if r.subject in subjects and r.title.startswith("Automate")
    ]
    return {"candidates": candidates, "recommendations": recs}


def _data_processor(report: AnalyticsReport) -> dict[str, Any]:
    facts = report.facts
    table = facts.get("table") or {}
    process = facts.get("process") or {}
    return {
        "formats": report.dataset.split("+"),
        "rows": table.get("rows"),
        "columns": [
            {"column": c["column"], "kind": c["kind"], "missing_rate": c["missing_rate"]}
            for c in table.get("columns", [])
        ],
        "runs": process.get("runs"),
        "step_executions": process.get("step_executions"),
        "series": [
            {"name": s["name"], "points": s["points"], "start": s["start"], "end": s["end"]}
            for s in facts.get("series", [])
        ],
        "metrics": sorted((facts.get("metrics") or {}).get("given", {})),
        "data_quality": _findings(report, "data_quality"),
    }


def _pattern_recognizer(report: AnalyticsReport) -> dict[str, Any]:
    process = report.facts.get("process") or {}
    return {
        "patterns": _findings(report, "seasonality", "correlation", "anomaly", "changepoint"),
        "variants": process.get("variants", []),
        "rework": [
            f for f in _findings(report, "kpi_alert") if f["evidence"].get("pattern") == "rework"
        ],
    }


def _insight_extractor(report: AnalyticsReport) -> dict[str, Any]:
    analysis = report.analysis
    return {
        "overview": report.facts.get("overview"),
        "top_findings": _findings(report),
        "recommendations": [r.model_dump() for r in analysis.recommendations],
        "roadmap": [p.model_dump() for p in analysis.roadmap],
    }


_TOOLS: dict[str, Callable[[AnalyticsReport], dict[str, Any]]] = {
    "data_analyzer": _data_analyzer,
    "kpi_calculator": _kpi_calculator,
    "trend_identifier": _trend_identifier,
    "workflow_analyzer": _workflow_analyzer,
    "bottleneck_detector": _bottleneck_detector,
    "automation_recommender": _automation_recommender,
    "data_processor": _data_processor,
    "pattern_recognizer": _pattern_recognizer,
    "insight_extractor": _insight_extractor,
}


def run_tool(
    name: str, data: dict[str, Any], analysis_type: str = "custom_analysis"
) -> dict[str, Any]:
    """One tool on one data object (builds a throwaway ``Toolkit``)."""
    return Toolkit(data, analysis_type).call(name)


def data_analyzer(data: dict[str, Any], analysis_type: str = "custom_analysis") -> dict[str, Any]:
    """Column profiles, data quality, anomalies and correlations of tabular data."""
    return run_tool("data_analyzer", data, analysis_type)


def kpi_calculator(data: dict[str, Any], analysis_type: str = "custom_analysis") -> dict[str, Any]:
    """Every KPI with its unit and formula, plus KPI alerts."""
    return run_tool("kpi_calculator", data, analysis_type)


def trend_identifier(
    data: dict[str, Any], analysis_type: str = "custom_analysis"
) -> dict[str, Any]:
    """Trends, level shifts, seasonality, anomalies and forecasts of the series."""
    return run_tool("trend_identifier", data, analysis_type)


def workflow_analyzer(
    data: dict[str, Any], analysis_type: str = "custom_analysis"
) -> dict[str, Any]:
    """Process KPIs, per-step statistics and the most common paths."""
    return run_tool("workflow_analyzer", data, analysis_type)


def bottleneck_detector(
    data: dict[str, Any], analysis_type: str = "custom_analysis"
) -> dict[str, Any]:
    """Bottlenecks, failure hotspots and rework loops."""
    return run_tool("bottleneck_detector", data, analysis_type)


def automation_recommender(
    data: dict[str, Any], analysis_type: str = "custom_analysis"
) -> dict[str, Any]:
    """Automation candidates with hours and money saved, effort and payback."""
    return run_tool("automation_recommender", data, analysis_type)


def data_processor(data: dict[str, Any], analysis_type: str = "custom_analysis") -> dict[str, Any]:
    """What the data is: formats, sizes, columns and their quality."""
    return run_tool("data_processor", data, analysis_type)


def pattern_recognizer(
    data: dict[str, Any], analysis_type: str = "custom_analysis"
) -> dict[str, Any]:
    """Recurring patterns: seasonality, correlations, anomalies, variants, rework."""
    return run_tool("pattern_recognizer", data, analysis_type)


def insight_extractor(
    data: dict[str, Any], analysis_type: str = "custom_analysis"
) -> dict[str, Any]:
    """The most important findings, the recommendations and the roadmap."""
    return run_tool("insight_extractor", data, analysis_type)
