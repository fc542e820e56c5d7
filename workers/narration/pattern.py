"""The pattern narrator: deterministic business prose written from the computed facts.

It is the last provider of every chain, so it must be good enough on its own: a business
reader learns what was analysed, what matters most, why, and what to do first. It quotes
only numbers the analytics computed (KPI values, evidence, savings, the analytics' own
titles), formatted so the grounding check finds every one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, Final

from bi_engine.domain.result import KPI, Analysis, Finding, Recommendation
from bi_engine.domain.vocabulary import ANALYSIS_TYPES

_DATASET_WORDS: Final = {
    "runs": "Process Runs of Your Processes",
    "events": "an event log of Your Processes",
    "n8n_executions": "n8n Process Runs (executions) of Your Processes",
    "records": "a dataset of business records",
    "csv": "a dataset of business records",
    "series": "time series of your business figures",
    "metrics": "your headline business figures",
}
_SEVERITY_WORDS: Final = {
    "critical": "critical",
    "high": "serious",
    "medium": "notable",
    "low": "minor",
    "info": "informational",
}
_COUNT_WORDS: Final = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight")
_PERCENT_UNITS: Final = frozenset({"%", "pct", "percent"})
_RATIO_UNITS: Final = frozenset({"ratio", "share", "fraction"})
_PROCESS_KINDS: Final = frozenset({"bottleneck", "failure_hotspot", "automation_candidate"})
_TREND_KINDS: Final = frozenset({"trend", "changepoint", "seasonality", "anomaly"})
_DATA_KINDS: Final = frozenset({"data_quality", "correlation", "anomaly"})


# ----------------------------------------------------------------------------- formatting


def number(value: float | int | None) -> str:
    """A computed value as a reader sees it: thousands separators, no float noise."""
    if value is None:
        return "n/a"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    exact = Decimal(repr(value))
    return f"{exact:,f}" if abs(value) >= 1000 else f"{exact:f}"


def percent_of(fraction: float) -> str:
    """0.623 -> ``62.3%`` (one decimal, the rounding the grounding check accepts)."""
    return f"{number(_trim(round(fraction * 100, 1)))}%"


def _trim(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def kpi_value(kpi: KPI) -> str:
    """A KPI's value with its unit: ``12.82 hours``, ``74.5%``, ``774.7``."""
    value = kpi.value
    if value is None:
        return "not available"
    unit = (kpi.unit or "").strip()
    if unit in _RATIO_UNITS or kpi.name.endswith(("_rate", "_share")) or "share" in kpi.name:
        return percent_of(float(value)) if abs(float(value)) <= 1 else number(value)
    if unit in _PERCENT_UNITS or kpi.name.endswith("_pct"):
        return f"{number(value)}%"
    if unit in ("", "currency"):
        return number(value)
    return f"{number(value)} {unit}"


def kpi_phrase(kpi: KPI) -> str:
    return f"{_label(kpi)}: {kpi_value(kpi)}"


def _label(kpi: KPI) -> str:
    label = kpi.label or kpi.name.replace("_", " ")
    return label[:1].upper() + label[1:]


def count_words(n: int, noun: str, plural: str | None = None) -> str:
    """Small counts in words (they are counts of this report, not computed figures)."""
    word = _COUNT_WORDS[n] if 0 <= n < len(_COUNT_WORDS) else "several"
    return f"{word} {noun if n == 1 else (plural or noun + 's')}"


def _lower_first(text: str) -> str:
    if len(text) > 1 and text[1:2].islower():
        return text[:1].lower() + text[1:]
    return text


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _bullets(lines: Iterable[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def finding_line(f: Finding, *, severity: bool = True) -> str:
    detail = f" {_sentence(f.detail)}" if f.detail else ""
    words = f" ({_SEVERITY_WORDS[f.severity]})" if severity else ""
    return f"**{_sentence(f.title)[:-1]}**{words}.{detail}"


def recommendation_line(r: Recommendation) -> str:
    parts = [f"**{r.title}**."]
    if r.detail:
        parts.append(_sentence(r.detail))
    if r.impact:
        parts.append(f"Expected impact: {_lower_first(_sentence(r.impact))}")
    parts.append(f"Effort: {r.effort}.")
    return " ".join(parts)


# ----------------------------------------------------------------------------- narrator


class PatternNarrator:
    """Writes every Processing Task's answer and the report's sections from one analysis."""

    def __init__(
        self,
        analysis: Analysis,
        *,
        analysis_type: str,
        facts: dict[str, Any] | None = None,
        question: str | None = None,
    ) -> None:
        self.analysis = analysis
        self.analysis_type = analysis_type
        self.facts = facts or {}
        self.question = (question or "").strip() or None
        self._writers: dict[str, Callable[[], str]] = {
            "analyse_current_performance": self.current_performance,
            "identify_optimization_opportunities": self.optimization_opportunities,
            "generate_implementation_roadmap": self.implementation_roadmap,
            "map_process_performance": self.process_performance,
            "recommend_optimizations": self.optimizations,
            "interpret_data": self.data_interpretation,
            "identify_trends": self.trends,
            "assess_business_impact": self.business_impact,
            "answer_question": self.answer_question,
            "executive_summary": self.executive_draft,
            "technical_notes": self.technical_notes,
            "business_translation": self.business_translation,
            "quality_review": lambda: self.review_note(0),
        }

    # -- dispatch

    def write(self, assignment: str) -> str:
        """The final answer of one Processing Task."""
        writer = self._writers.get(assignment, self.general_overview)
        return writer().strip()

    # -- shared pieces

    @property
    def label(self) -> str:
        for t in ANALYSIS_TYPES:
            if t.type == self.analysis_type:
                return t.label
        return "Business Analysis"

    @property
    def dataset_words(self) -> str:
        raw = str(self.facts.get("dataset") or "")
        parts = [_DATASET_WORDS.get(p, "") for p in raw.split("+")]
        words = [p for p in parts if p]
        return " and ".join(words) if words else "the data you sent"

    def findings(self, kinds: Iterable[str] | None = None) -> list[Finding]:
        wanted = set(kinds) if kinds is not None else None
        return [f for f in self.analysis.findings if wanted is None or f.kind in wanted]

    def kpis(self, limit: int = 6, names: Sequence[str] | None = None) -> list[KPI]:
        pool = [k for k in self.analysis.kpis if k.value is not None]
        if names:
            chosen = [k for n in names for k in pool if k.name == n]
            return chosen[:limit] if chosen else pool[:limit]
        return pool[:limit]

    def headline(self) -> str:
        top = self.analysis.findings[:1]
        if top:
            return _sentence(top[0].title)[:-1]
        if self.analysis.kpis:
            return f"{self.label}: no significant issues in {self.dataset_words}"
        return f"{self.label}: nothing in the data needs attention"

    # -- analysis Processing Tasks

    def current_performance(self) -> str:
        kpis = self.kpis(8)
        lines = [
            f"Current performance of {self.dataset_words}.",
            "",
            "Key figures:",
            _bullets(kpi_phrase(k) for k in kpis) if kpis else "- No figures could be computed.",
        ]
        alerts = self.findings({"kpi_alert", "failure_hotspot", "bottleneck"})[:3]
        if alerts:
            lines += ["", "What stands out:", _bullets(finding_line(f) for f in alerts)]
        else:
            lines += ["", "No figure is outside its normal range."]
        return "\n".join(lines)

    def optimization_opportunities(self) -> str:
        found = self.findings(_PROCESS_KINDS | {"kpi_alert"})
        if not found:
            return (
                "No bottleneck, failing Process Step or automation candidate stands out in "
                f"{self.dataset_words}: Your Processes run evenly."
            )
        bottlenecks = [f for f in found if f.kind == "bottleneck"]
        hotspots = [f for f in found if f.kind == "failure_hotspot"]
        candidates = [f for f in found if f.kind == "automation_candidate"]
        rework = [f for f in found if f.kind == "kpi_alert" and f.evidence.get("pattern")]
        lines = ["Optimisation opportunities in Your Processes.", ""]
        for title, items in (
            ("Bottlenecks", bottlenecks),
            ("Failing Process Steps", hotspots),
            ("Rework", rework),
            ("Automation candidates", candidates),
        ):
            if items:
                lines += [f"{title}:", _bullets(finding_line(f) for f in items[:4]), ""]
        return "\n".join(lines)

    def implementation_roadmap(self) -> str:
        roadmap = self.analysis.roadmap
        if not roadmap:
            return "No change is needed now: keep monitoring the figures in this report."
        lines = ["Implementation roadmap, quick wins first.", ""]
        for phase in roadmap:
            lines.append(f"Phase {phase.phase}:")
            lines.append(_bullets(phase.items))
            lines.append("")
        first = self.analysis.recommendations[:1]
        if first:
            lines.append(f"Start with: {recommendation_line(first[0])}")
        return "\n".join(lines)

    def process_performance(self) -> str:
        names = ("runs", "success_rate", "median_cycle_time", "p90_cycle_time", "cost_per_run")
        kpis = self.kpis(6, names)
        lines = [
            f"How {self.dataset_words} perform.",
            "",
            _bullets(kpi_phrase(k) for k in kpis) if kpis else "- No process figures available.",
        ]
        slow = self.findings({"bottleneck", "failure_hotspot"})[:3]
        if slow:
            lines += [
                "",
                "Where time and Process Runs are lost:",
                _bullets(map(finding_line, slow)),
            ]
        return "\n".join(lines)

    def optimizations(self) -> str:
        recs = self.analysis.recommendations[:5]
        if not recs:
            return "No optimisation is worth its cost on this data."
        lines = ["Recommended optimisations, most valuable first.", ""]
        lines.append(_bullets(recommendation_line(r) for r in recs))
        return "\n".join(lines)

    def data_interpretation(self) -> str:
        kpis = self.kpis(6)
        lines = [f"What {self.dataset_words} say.", ""]
        if kpis:
            lines += ["Profile:", _bullets(kpi_phrase(k) for k in kpis), ""]
        found = self.findings(_DATA_KINDS)[:5]
        if found:
            lines += ["Patterns and data quality:", _bullets(map(finding_line, found))]
        else:
            lines.append("No strong relationship, outlier or data quality problem stands out.")
        return "\n".join(lines)

    def trends(self) -> str:
        found = self.findings(_TREND_KINDS)[:6]
        lines = [f"Trends in {self.dataset_words}.", ""]
        if found:
            lines += [_bullets(map(finding_line, found)), ""]
        else:
            lines += ["No trend, level shift or seasonal pattern is strong enough to report.", ""]
        forecast = [k for k in self.analysis.kpis if "forecast" in k.name and k.value is not None]
        if forecast:
            lines += ["Outlook:", _bullets(kpi_phrase(k) for k in forecast[:3])]
        return "\n".join(lines)

    def business_impact(self) -> str:
        lines = ["Business impact.", ""]
        figures = [
            k for k in self.analysis.kpis if k.formula and k.value is not None and k.unit != "ratio"
        ][:5]
        if figures:
            lines += ["Derived business figures:", _bullets(kpi_phrase(k) for k in figures), ""]
        recs = self.analysis.recommendations[:3]
        if recs:
            lines += ["What to do about it:", _bullets(recommendation_line(r) for r in recs)]
        else:
            lines.append("The figures need no corrective action now.")
        return "\n".join(lines)

    def answer_question(self) -> str:
        relevant = self.relevant_findings()
        lines = []
        if self.question:
            lines += [f"Your question: {self.question}", ""]
        if relevant:
            lines += ["What the data says:", _bullets(map(finding_line, relevant[:4]))]
        else:
            lines.append(
                "The data holds no finding that bears directly on this question; the key "
                "figures below describe it."
            )
            lines.append(_bullets(kpi_phrase(k) for k in self.kpis(5)))
        recs = self.analysis.recommendations[:2]
        if recs:
            lines += ["", "What to do:", _bullets(recommendation_line(r) for r in recs)]
        return "\n".join(lines)

    def relevant_findings(self) -> list[Finding]:
        if not self.question:
            return list(self.analysis.findings)
        words = {w.strip(".,?!:;").lower() for w in self.question.split() if len(w) > 3}
        scored = [
            (sum(w in f"{f.subject} {f.title} {f.detail}".lower() for w in words), i, f)
            for i, f in enumerate(self.analysis.findings)
        ]
        hits = [f for score, _, f in sorted(scored, key=lambda s: (-s[0], s[1])) if score > 0]
        return hits or list(self.analysis.findings)

    def general_overview(self) -> str:
        return "\n\n".join([self.current_performance(), self.optimizations()])

    # -- report team

    def executive_draft(self) -> str:
        """``Headline: ...`` then the executive summary, as the Executive Writer delivers it."""
        return f"Headline: {self.headline()}\n\n{self.executive_summary()}"

    def executive_summary(self) -> str:
        paragraphs = [self._situation(), self._what_matters(), self._what_to_do()]
        return "\n\n".join(p for p in paragraphs if p)

    def _situation(self) -> str:
        intro = f"Your AI Team analysed {self.dataset_words} for this {self.label}."
        if self.question:
            intro += f" The question was: {_sentence(self.question)}"
        kpis = self.kpis(4)
        if not kpis:
            return intro
        figures = "; ".join(f"{_lower_first(_label(k))}: {kpi_value(k)}" for k in kpis)
        return f"{intro} Key figures — {figures}."

    def _what_matters(self) -> str:
        findings = self.analysis.findings
        if not findings:
            return "Nothing in the data calls for action: no bottleneck, failure or anomaly."
        top = findings[0]
        text = f"The most important finding: {_lower_first(_sentence(top.title))}"
        if top.detail:
            text += f" {_sentence(top.detail)}"
        others = [f.title for f in findings[1:3]]
        if others:
            text += f" Also worth attention: {'; '.join(_lower_first(t) for t in others)}."
        serious = sum(1 for f in findings if f.severity in ("critical", "high"))
        if serious > 1:
            text += f" In all, {count_words(serious, 'issue')} need prompt attention."
        return text

    def _what_to_do(self) -> str:
        recs = self.analysis.recommendations
        if not recs:
            return ""
        first = recs[0]
        text = f"We recommend starting with: {_lower_first(first.title)}."
        if first.impact:
            text += f" Expected impact: {_lower_first(_sentence(first.impact))}"
        quick = [r.title for r in recs[1:] if r.effort == "low"][:2]
        if quick:
            text += f" Quick wins with little effort: {'; '.join(_lower_first(q) for q in quick)}."
        phases = len(self.analysis.roadmap)
        if phases > 1:
            text += f" The roadmap below orders the work in {count_words(phases, 'phase')}."
        return text

    def technical_notes(self) -> str:
        lines = [f"Data: {self.dataset_words}.", ""]
        formulas = [k for k in self.analysis.kpis if k.formula][:8]
        if formulas:
            lines += ["How the key figures are computed:"]
            lines.append(_bullets(f"{_label(k)} = {k.formula}" for k in formulas))
            lines.append("")
        evidence = [f for f in self.analysis.findings if f.confidence is not None][:5]
        if evidence:
            lines.append("Statistical support for the findings:")
            lines.append(_bullets(self._support(f) for f in evidence))
            lines.append("")
        lines.append(
            "Every figure comes from deterministic analytics on the data as sent; "
            "the AI Assistants describe the figures and never compute them."
        )
        return "\n".join(lines)

    def _support(self, f: Finding) -> str:
        certainty = "very high" if f.confidence >= 0.95 else "good" if f.confidence >= 0.8 else ""
        certainty = certainty or "moderate"
        method = f.evidence.get("test") or f.evidence.get("method")
        how = f" (method: {str(method).replace('_', ' ')})" if method else ""
        return f"{_sentence(f.title)[:-1]}: {certainty} confidence{how}."

    def business_translation(self) -> str:
        findings = self.analysis.findings[:4]
        lines = []
        if findings:
            lines.append(_bullets(self._meaning(f) for f in findings))
        else:
            lines.append("- Your Processes and figures are in good shape; keep monitoring them.")
        recs = self.analysis.recommendations[:3]
        if recs:
            lines += ["", "What to do next:"]
            lines.append(_bullets(f"{r.title} ({r.effort} effort)." for r in recs))
        return "\n".join(lines).strip()

    def _meaning(self, f: Finding) -> str:
        subject = f.subject
        meanings = {
            "bottleneck": f"Work waits at the Process Step {subject}: customers and colleagues "
            "wait with it, and this is where a fix shortens every Process Run.",
            "failure_hotspot": f"The Process Step {subject} fails often: each failure means "
            "manual follow-up, delays and unhappy customers.",
            "automation_candidate": f"The Process Step {subject} is routine manual work: "
            "automating it frees people for work that needs them.",
            "kpi_alert": f"{_sentence(f.title)} This figure is outside its healthy range.",
            "trend": f"{_sentence(f.title)} Plan staffing, stock and budget for where "
            "this is heading.",
            "changepoint": f"{_sentence(f.title)} Something changed then; find out what, "
            "and keep it or undo it.",
            "seasonality": f"{_sentence(f.title)} Plan capacity for the peaks and use the "
            "quiet periods.",
            "anomaly": f"{_sentence(f.title)} Check these moments: errors, fraud or one-off "
            "events hide there.",
            "correlation": f"{_sentence(f.title)} Use this relationship to target effort, "
            "keeping in mind that it shows association, not cause.",
            "data_quality": f"{_sentence(f.title)} Decisions are only as good as this data: "
            "fix it at the source.",
        }
        return meanings.get(f.kind, _sentence(f.title))

    def review_note(self, ungrounded: int) -> str:
        """The Quality Reviewer's verdict on the draft."""
        if ungrounded == 0:
            return (
                "Quality review: every figure in the draft traces back to the computed facts; "
                "the report is ready."
            )
        verb = "was" if ungrounded == 1 else "were"
        return (
            f"Quality review: {count_words(ungrounded, 'figure')} in the draft could not be "
            f"traced to the computed facts and {verb} corrected or removed."
        )
