"""Recommendations and the roadmap, derived only from findings so every figure they quote
is already in a finding's evidence or in their own ``estimated_savings``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from bi_engine.domain.result import SEVERITY_ORDER, Finding, Recommendation, RoadmapPhase
from workers.analytics.parts import percent
from workers.analytics.rounding import clean, num, pct

MAX_RECOMMENDATIONS = 12
#: Assumptions behind the savings estimates, stated in every estimate that uses them.
STEP_TIME_REDUCTION = 0.3
FAILURE_REDUCTION = 0.5
PHASE_TITLES = {"low": "Quick wins", "medium": "Process changes", "high": "Larger projects"}

Draft = dict[str, Any]


def recommendations(findings: list[Finding]) -> list[Recommendation]:
    """One action per actionable finding, ranked by severity, confidence and savings."""
    drafts = [d for f in findings if (d := _draft(f)) is not None]
    if any(f.kind == "failure_hotspot" for f in findings):  # the hotspot fix covers it
        drafts = [d for d in drafts if d["finding"].subject != "success_rate"]
    drafts.sort(key=lambda d: (-_score(d), d["title"]))
    unique: dict[str, Draft] = {}
    for draft in drafts:
        unique.setdefault(draft["title"], draft)
    ranked = list(unique.values())[:MAX_RECOMMENDATIONS]
    return [
        Recommendation(
            title=d["title"],
            detail=d["detail"],
            impact=d["impact"],
            effort=d["effort"],
            estimated_savings=clean(d["savings"]),
            priority=i,
            subject=d["subject"],
        )
        for i, d in enumerate(ranked, start=1)
    ]


def roadmap(recs: list[Recommendation]) -> list[RoadmapPhase]:
    """Quick wins first, then process changes, then larger projects; priority order inside."""
    phases: list[RoadmapPhase] = []
    for effort in ("low", "medium", "high"):
        items = [r.title for r in recs if r.effort == effort]
        if items:
            phases.append(RoadmapPhase(phase=len(phases) + 1, items=items))
    return phases


def _score(draft: Draft) -> float:
    finding: Finding = draft["finding"]
    savings = draft["savings"]
    money = float(savings.get("amount_per_month") or 0)
    hours = float(savings.get("hours_per_month") or 0)
    bonus = math.log10(1 + money) + math.log10(1 + hours)
    return SEVERITY_ORDER[finding.severity] * 10 + finding.confidence * 3 + bonus


def _draft(f: Finding) -> Draft | None:
    if f.severity == "info":
        return None
    builder = _BUILDERS.get(f.kind)
    draft = builder(f) if builder else None
    if draft is not None:
        draft.setdefault("subject", f.subject)
        draft.setdefault("savings", {})
        draft["finding"] = f
    return draft


def _bottleneck(f: Finding) -> Draft:
    ev = f.evidence
    per_run = float(ev.get("mean_working") or 0) + float(ev.get("mean_waiting") or 0)
    saved = per_run * STEP_TIME_REDUCTION
    cut = float(ev.get("share_of_cycle_time") or 0) * STEP_TIME_REDUCTION * 100
    queue = float(ev.get("waiting_share") or 0) >= 0.5
    how = (
        "most of it is waiting: set a service level with reminders and escalation, and "
        "delegate or auto-approve routine cases"
        if queue
        else "standardise the work, add capacity at peak times and split the step where possible"
    )
    return {
        "title": f"Relieve the bottleneck at {f.subject}",
        "detail": f"{f.subject} takes {percent(ev.get('share_of_cycle_time', 0))} of the cycle "
        f"time; {how}.",
        "impact": f"About {pct(cut)}% shorter cycle time if the step gets "
        f"{percent(STEP_TIME_REDUCTION)} faster",
        "effort": "medium",
        "savings": {
            "cycle_time_saved_per_run": num(saved),
            "unit": ev.get("unit"),
            "cycle_time_reduction_pct": pct(cut),
            "assumed_step_time_reduction_pct": pct(STEP_TIME_REDUCTION * 100),
        },
    }


def _hotspot(f: Finding) -> Draft:
    ev = f.evidence
    avoided = round(int(ev.get("failures", 0)) * FAILURE_REDUCTION)
    errors = ev.get("top_errors") or []
    cause = f" The most frequent error: {errors[0]}." if errors else ""
    return {
        "title": f"Fix the failures at {f.subject}",
        "detail": f"{f.subject} fails in {percent(ev.get('failure_rate', 0))} of attempts. Add "
        f"input validation and automatic retries, and route failures to an owner.{cause}",
        "impact": f"About {avoided} fewer failed runs over the same period",
        "effort": "medium",
        "savings": {
            "failures_avoided": avoided,
            "assumed_failure_reduction_pct": pct(FAILURE_REDUCTION * 100),
        },
    }


def _automation(f: Finding) -> Draft:
    ev = f.evidence
    savings = {
        "hours_per_month": ev.get("hours_saved_per_month"),
        "amount_per_month": ev.get("amount_saved_per_month"),
        "implementation_hours": ev.get("implementation_hours"),
        "implementation_cost": ev.get("implementation_cost"),
        "payback_months": ev.get("payback_months"),
        "roi_12m_pct": ev.get("roi_12m_pct"),
        "cost_per_hour": ev.get("cost_per_hour"),
    }
    money = (
        f" (about {ev['amount_saved_per_month']} a month)" if "amount_saved_per_month" in ev else ""
    )
    return {
        "title": f"Automate {f.subject}",
        "detail": f"{f.subject} is manual and routine; automating it saves about "
        f"{ev.get('hours_saved_per_month')} hours a month{money}.",
        "impact": f"{ev.get('hours_saved_per_month')} hours a month freed",
        "effort": ev.get("effort", "medium"),
        "savings": {k: v for k, v in savings.items() if v is not None},
    }


def _kpi_alert(f: Finding) -> Draft | None:
    ev = f.evidence
    if ev.get("pattern") == "rework":
        extra = int(ev.get("extra_executions", 0))
        return {
            "title": f"Remove the rework loop at {f.subject}",
            "detail": f"{f.subject} is repeated in {percent(ev.get('rework_rate', 0))} of runs. "
            "Check inputs before the step and make acceptance criteria explicit.",
            "impact": f"Up to {extra} repeated executions avoided",
            "effort": "medium",
            "savings": {"repeated_executions_avoided": extra},
        }
    if f.subject == "success_rate":
        return {
            "title": "Raise the process success rate",
            "detail": f.detail + " Find the failing steps and fix their most common errors.",
            "impact": "More runs finish without intervention",
            "effort": "medium",
        }
    return {
        "title": f"Act on {f.subject}: {f.title.lower()}",
        "detail": f.detail,
        "impact": "Brings the KPI back into a healthy range",
        "effort": "medium",
    }


def _quality(f: Finding) -> Draft:
    issue = f.evidence.get("issue")
    actions = {
        "missing_values": (
            f"Fill in {f.subject} at the source",
            "Make the field mandatory where it is entered, and backfill it.",
        ),
        "duplicates": ("Remove duplicate records", "Deduplicate and add a unique key at entry."),
        "constant": (f"Review the {f.subject} field", "It never varies; fix or drop it."),
        "mixed_types": (f"Use one type for {f.subject}", "Validate the field's format at entry."),
    }
    title, detail = actions.get(str(issue), (f"Clean {f.subject}", f.detail))
    return {
        "title": title,
        "detail": f"{f.title}. {detail}",
        "impact": "More reliable analyses",
        "effort": "low",
    }


def _anomaly(f: Finding) -> Draft:
    return {
        "title": f"Review the unusual values of {f.subject}",
        "detail": f"{f.title}; check whether they are errors or real events worth learning from.",
        "impact": "Cleaner figures and early warning of problems",
        "effort": "low",
    }


def _trend(f: Finding) -> Draft | None:
    ev = f.evidence
    if f.severity == "low":
        return None
    if ev.get("direction") == "down":
        return {
            "title": f"Investigate the decline of {f.subject}",
            "detail": f"{f.detail} Find which segments or products drive it.",
            "impact": "Stops the decline early",
            "effort": "medium",
        }
    return {
        "title": f"Plan capacity for the growth of {f.subject}",
        "detail": f"{f.detail} Align staffing, stock and budget with the trend.",
        "impact": "Growth without service problems",
        "effort": "medium",
    }


def _changepoint(f: Finding) -> Draft:
    return {
        "title": f"Find out what changed in {f.subject} on {f.evidence.get('date')}",
        "detail": f"{f.detail} Link it to a price, campaign, process or system change.",
        "impact": "Repeat what worked, undo what did not",
        "effort": "low",
    }


def _seasonality(f: Finding) -> Draft | None:
    if float(f.evidence.get("strength", 0)) < 0.3:
        return None
    return {
        "title": f"Plan {f.subject} around its {f.evidence.get('period')}-step cycle",
        "detail": f"{f.detail} Schedule staff, stock and campaigns for the peak.",
        "impact": "Fewer shortages at peaks and less idle capacity in troughs",
        "effort": "low",
    }


_BUILDERS: dict[str, Callable[[Finding], Draft | None]] = {
    "bottleneck": _bottleneck,
    "failure_hotspot": _hotspot,
    "automation_candidate": _automation,
    "kpi_alert": _kpi_alert,
    "data_quality": _quality,
    "anomaly": _anomaly,
    "trend": _trend,
    "changepoint": _changepoint,
    "seasonality": _seasonality,
}
