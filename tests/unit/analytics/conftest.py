"""Helpers shared by the analytics tests."""

from __future__ import annotations

import json
from typing import Any

from bi_engine.domain.result import Finding
from workers.analytics import AnalyticsReport


def of_kind(report: AnalyticsReport, kind: str) -> list[Finding]:
    return [f for f in report.analysis.findings if f.kind == kind]


def kpi_value(report: AnalyticsReport, name: str) -> Any:
    return next(k.value for k in report.analysis.kpis if k.name == name)


def as_json(report: AnalyticsReport) -> str:
    """Strict JSON: fails on NaN or infinity anywhere in the report."""
    return json.dumps(report.model_dump(mode="json"), allow_nan=False, sort_keys=True)
