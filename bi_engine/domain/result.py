"""The analysis result shape of CONTRACT section 5.

These models are shared by the deterministic analytics (which produce them), the
narrators (which describe them) and the API (which serves them), so the contract's
vocabulary is spelled in exactly one place.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FindingKind = Literal[
    "bottleneck",
    "anomaly",
    "trend",
    "changepoint",
    "seasonality",
    "correlation",
    "failure_hotspot",
    "automation_candidate",
    "data_quality",
    "kpi_alert",
]
Severity = Literal["info", "low", "medium", "high", "critical"]
Effort = Literal["low", "medium", "high"]

SEVERITY_ORDER: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

JsonScalar = str | int | float | bool | None
Evidence = dict[str, Any]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class KPI(_Model):
    """One computed figure, e.g. ``median_cycle_time = 41.5 hours``."""

    name: str
    value: float | int | None
    unit: str = ""
    label: str = ""
    formula: str | None = None


class Finding(_Model):
    """One statistically supported observation about the input data."""

    kind: FindingKind
    subject: str
    title: str
    detail: str = ""
    severity: Severity = "info"
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    evidence: Evidence = Field(default_factory=dict)


class Recommendation(_Model):
    """An action for the business, tied to the findings that justify it."""

    title: str
    detail: str = ""
    impact: str = ""
    effort: Effort = "medium"
    estimated_savings: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(default=1, ge=1)
    subject: str | None = None


class RoadmapPhase(_Model):
    """A step of the implementation roadmap."""

    phase: int = Field(ge=1)
    items: list[str]


class Summary(_Model):
    headline: str = ""
    executive_summary: str = ""


class Analysis(_Model):
    """The ``data.analysis`` object of a result."""

    summary: Summary = Field(default_factory=Summary)
    kpis: list[KPI] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    recommendations: list[Recommendation] = Field(default_factory=list)
    roadmap: list[RoadmapPhase] = Field(default_factory=list)
