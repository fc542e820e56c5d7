"""Automation candidates: frequent, manual, routine (low-variance) steps, with the hours and
money automating them would save per month, an effort estimate and the return on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bi_engine.domain.result import Finding, Severity
from workers.analytics.parts import finding, percent
from workers.analytics.rounding import frac, num, pct

if TYPE_CHECKING:
    from workers.analytics.process import Prepared

DAYS_PER_MONTH = 30.44
#: Share of a routine manual step's working time that automation removes (the rest is review).
AUTOMATABLE_SHARE = 0.8
#: Implementation effort in hours for each effort class.
EFFORT_HOURS = {"low": 40, "medium": 120, "high": 240}
MAX_CV = 0.75
#: A "manual task" longer than a working day is mostly idle time, not effort to automate.
MAX_TASK_SECONDS = 8 * 3600
MIN_RUN_SHARE = 0.2


def automation_candidates(
    prep: Prepared, table: pd.DataFrame, hourly_rate: float | None
) -> list[Finding]:
    """The top five candidates by hours saved per month."""
    frame = prep.frame
    flagged = frame["manual"].notna().any()
    runs = max(len(prep.cases), 1)
    rows = []
    for _, row in table.iterrows():
        manual = row["manual"] if flagged else (1.0 if row["has_resource"] > 0 else np.nan)
        if not (manual >= 0.5 and row["work_count"] >= 10 and row["runs"] / runs >= MIN_RUN_SHARE):
            continue
        cv = row["cv"] if np.isfinite(row["cv"]) else 0.0
        routine = cv <= MAX_CV and 0 < row["work_median"] <= MAX_TASK_SECONDS
        if routine and not row["failure_rate"] >= 0.5:
            rows.append(_estimate(prep, row, cv, hourly_rate, explicit=bool(flagged)))
    rows.sort(key=lambda item: (-item[0], item[1].subject))
    return [item[1] for item in rows[:5]]


def _estimate(
    prep: Prepared, row: pd.Series, cv: float, rate: float | None, explicit: bool
) -> tuple[float, Finding]:
    per_month = row["executions"] / prep.span_days * DAYS_PER_MONTH
    hours = per_month * row["work_mean"] / 3600.0 * AUTOMATABLE_SHARE
    effort = (
        "low"
        if cv <= 0.3 and not row["failure_rate"] >= 0.05
        else ("medium" if cv <= 0.6 else "high")
    )
    evidence: dict[str, Any] = {
        "executions_per_month": num(per_month),
        "mean_working": num(row["work_mean"] / prep.scale),
        "unit": prep.unit,
        "variability_cv": num(cv),
        "manual_share": frac(row["manual"]) if explicit else None,
        "automatable_share": AUTOMATABLE_SHARE,
        "hours_saved_per_month": num(hours),
        "effort": effort,
        "implementation_hours": EFFORT_HOURS[effort],
    }
    evidence.update(_money(row, per_month, hours, effort, rate))
    confidence = (0.5 + 0.45 * min(1.0, row["work_count"] / 50)) * (1.0 if explicit else 0.7)
    name = str(row["name"])
    return hours, finding(
        "automation_candidate",
        name,
        f"Automate {name}",
        severity=_severity(hours),
        confidence=confidence,
        detail=f"{name} is a manual, routine step (variability {evidence['variability_cv']}) "
        f"run about {evidence['executions_per_month']} times a month; automating "
        f"{percent(AUTOMATABLE_SHARE)} of its working time saves about "
        f"{evidence['hours_saved_per_month']} hours a month.",
        evidence=evidence,
    )


def _money(
    row: pd.Series, per_month: float, hours: float, effort: str, rate: float | None
) -> dict[str, Any]:
    impl_hours = EFFORT_HOURS[effort]
    if rate is not None:
        amount = hours * rate
        cost = impl_hours * rate
    elif np.isfinite(row["cost_mean"]):
        amount = per_month * row["cost_mean"] * AUTOMATABLE_SHARE
        cost = np.nan
    else:
        return {"payback_months": num(impl_hours / hours) if hours > 0 else None}
    out: dict[str, Any] = {"amount_saved_per_month": num(amount), "cost_per_hour": num(rate)}
    if np.isfinite(cost) and amount > 0:
        out["implementation_cost"] = num(cost)
        out["payback_months"] = num(cost / amount)
        out["roi_12m_pct"] = pct((12 * amount - cost) / cost * 100)
    return out


def _severity(hours: float) -> Severity:
    if hours >= 40:
        return "high"
    if hours >= 10:
        return "medium"
    return "low" if hours >= 2 else "info"
