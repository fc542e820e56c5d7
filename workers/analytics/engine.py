"""The entry point: parse the input, run every analysis that applies, rank the output."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from bi_engine.domain.result import KPI, SEVERITY_ORDER, Analysis, Finding
from workers.analytics import ingest, kpis, process, recommend, tabular, timeseries
from workers.analytics.parts import Part
from workers.analytics.report import AnalyticsReport
from workers.analytics.rounding import clean


def analyze(
    analysis_type: str, data: dict[str, Any], *, metrics_focus: list[str] | None = None
) -> AnalyticsReport:
    """Deterministic numbers for one submission; raises ``InvalidData`` on a bad shape."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        dataset = ingest.load(analysis_type, data)
        part = run(dataset)
    focus = [f.lower() for f in metrics_focus or [] if isinstance(f, str) and f]
    findings = rank_findings(part.findings, focus)
    recs = recommend.recommendations(findings)
    analysis = Analysis(
        kpis=rank_kpis(part.kpis, focus),
        findings=findings,
        recommendations=recs,
        roadmap=recommend.roadmap(recs),
    )
    facts = {"dataset": dataset.description, **part.facts, "overview": overview(findings)}
    if focus:
        facts["metrics_focus"] = focus
    return AnalyticsReport(analysis=analysis, facts=clean(facts), dataset=dataset.description)


def run(dataset: ingest.Dataset) -> Part:
    """Every area analysis the dataset supports, merged."""
    part = Part()
    if dataset.process is not None:
        part.extend(process.analyze(dataset.process, dataset.hourly_rate))
    if dataset.table is not None:
        part.extend(tabular.analyze(dataset.table))
    if dataset.series:
        part.extend(timeseries.analyze(dataset.series))
    if dataset.metrics:
        part.extend(kpis.analyze(dataset.metrics))
    return part


def _focused(text: str, focus: Sequence[str]) -> bool:
    lowered = text.lower()
    return any(f in lowered or lowered in f for f in focus)


def rank_findings(findings: list[Finding], focus: Sequence[str] = ()) -> list[Finding]:
    """Most severe first; within a severity, the focus metrics and the surest findings first."""
    return sorted(
        findings,
        key=lambda f: (
            -SEVERITY_ORDER[f.severity],
            not _focused(f.subject, focus),
            -f.confidence,
            f.kind,
            f.subject,
            f.title,
        ),
    )


def rank_kpis(items: list[KPI], focus: Sequence[str] = ()) -> list[KPI]:
    """Focus metrics first, otherwise the order the analyses produced (stable)."""
    first: dict[str, KPI] = {}
    for item in items:
        first.setdefault(item.name, item)
    unique = list(first.values())
    return sorted(unique, key=lambda k: not _focused(k.name, focus)) if focus else unique


def overview(findings: list[Finding]) -> dict[str, Any]:
    """Counts per kind and severity, and the top findings in one line each."""
    by_kind: dict[str, int] = {}
    by_severity: dict[str, int] = {}
    for f in findings:
        by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
        by_severity[f.severity] = by_severity.get(f.severity, 0) + 1
    return {
        "findings": len(findings),
        "by_kind": by_kind,
        "by_severity": by_severity,
        "top": [f"{f.severity}: {f.title}" for f in findings[:5]],
    }
