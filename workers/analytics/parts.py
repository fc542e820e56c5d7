"""The pieces each analysis returns, and builders that keep them JSON-safe and rounded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bi_engine.domain.result import KPI, Finding, FindingKind, Severity
from workers.analytics.rounding import clean, frac, num, pct


@dataclass
class Part:
    """KPIs, findings and compact facts from one area (process, table, series, metrics)."""

    kpis: list[KPI] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def extend(self, other: Part) -> None:
        self.kpis.extend(other.kpis)
        self.findings.extend(other.findings)
        self.facts.update(other.facts)


def kpi(name: str, value: Any, unit: str = "", label: str = "", formula: str | None = None) -> KPI:
    """A KPI whose value is rounded and finite (None when it cannot be computed)."""
    rounded = (
        pct(value) if name.endswith("_pct") else (frac(value) if unit == "ratio" else num(value))
    )
    return KPI(name=name, value=rounded, unit=unit, label=label or name, formula=formula)


def finding(
    kind: FindingKind,
    subject: str,
    title: str,
    *,
    severity: Severity,
    confidence: float,
    evidence: dict[str, Any],
    detail: str = "",
) -> Finding:
    """A finding with plain-JSON evidence; ``confidence`` is clipped to 0..1."""
    conf = round(min(max(float(confidence), 0.0), 1.0), 2)
    return Finding(
        kind=kind,
        subject=subject,
        title=title,
        detail=detail,
        severity=severity,
        confidence=conf,
        evidence=clean({k: v for k, v in evidence.items() if v is not None}),
    )


def percent(fraction: Any) -> str:
    """A fraction as the percentage a reader sees, e.g. 0.623 -> ``62.3%``."""
    value = num(float(fraction) * 100, 1)
    return f"{value:g}%"
