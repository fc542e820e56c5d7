"""The report: the team's narrative around the computed tables, as one Markdown document.

Tables (key figures, findings, recommendations, roadmap) are written from the analysis
itself, so their numbers are the computed ones by construction; the narrative sections come
from the AI Team (or the pattern narrator) after the grounding check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bi_engine.domain.result import Analysis
from workers.narration.pattern import finding_line, kpi_value, recommendation_line

_SEVERITY_LABEL = {
    "critical": "Critical",
    "high": "High",
    "medium": "Medium",
    "low": "Low",
    "info": "Info",
}


@dataclass
class TeamNote:
    agent: str
    task: str
    text: str


@dataclass
class Narrative:
    """The words of one report, section by section."""

    headline: str
    executive_summary: str
    technical_notes: str = ""
    business_translation: str = ""
    review_note: str = ""
    team_notes: list[TeamNote] = field(default_factory=list)


def compose(
    title: str,
    analysis: Analysis,
    narrative: Narrative,
    *,
    team: Sequence[str] = (),
    question: str | None = None,
) -> str:
    """The whole report in Markdown."""
    parts = [f"# {title}: {narrative.headline}"]
    if question:
        parts.append(_section("Your question", f"> {question.strip()}"))
    parts.append(_section("Executive summary", _demote_headings(narrative.executive_summary)))
    parts.append(_section("Key figures", _kpi_table(analysis)))
    parts.append(_section("Findings", _findings(analysis)))
    parts.append(_section("Recommendations", _recommendations(analysis)))
    if analysis.roadmap:
        parts.append(_section("Implementation roadmap", _roadmap(analysis)))
    if narrative.business_translation:
        translation = _demote_headings(narrative.business_translation)
        parts.append(_section("What this means for your business", translation))
    if narrative.team_notes:
        parts.append(_section("Notes from Your AI Team", _team_notes(narrative.team_notes)))
    if narrative.technical_notes:
        parts.append(_section("Technical notes", _demote_headings(narrative.technical_notes)))
    if narrative.review_note:
        parts.append(_section("Quality review", _demote_headings(narrative.review_note)))
    if team:
        parts.append(f"_Prepared by Your AI Team: {', '.join(team)}._")
    return "\n\n".join(p for p in parts if p).strip() + "\n"


def _section(title: str, body: str) -> str:
    body = body.strip()
    return f"## {title}\n\n{body}" if body else ""


def _demote_headings(text: str) -> str:
    """Headings inside a section's text become level 4, so the report's outline stays clean."""
    return re.sub(r"^#{1,6}\s+", "#### ", text, flags=re.MULTILINE)


def _kpi_table(analysis: Analysis) -> str:
    rows = [k for k in analysis.kpis if k.value is not None]
    if not rows:
        return "No key figures could be computed from this data."
    lines = ["| Figure | Value |", "|---|---|"]
    lines += [f"| {_cell(k.label or k.name)} | {_cell(kpi_value(k))} |" for k in rows]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _findings(analysis: Analysis) -> str:
    if not analysis.findings:
        return "No bottleneck, failure, anomaly or trend stands out in this data."
    return "\n".join(
        f"- {_SEVERITY_LABEL[f.severity]} · {finding_line(f, severity=False)}"
        for f in analysis.findings
    )


def _recommendations(analysis: Analysis) -> str:
    if not analysis.recommendations:
        return "No change is needed now; keep monitoring the key figures."
    ordered = sorted(analysis.recommendations, key=lambda r: r.priority)
    return "\n".join(f"- {recommendation_line(r)}" for r in ordered)


def _roadmap(analysis: Analysis) -> str:
    blocks = []
    for phase in analysis.roadmap:
        items = "\n".join(f"- {item}" for item in phase.items)
        blocks.append(f"### Phase {phase.phase}\n\n{items}")
    return "\n\n".join(blocks)


def _team_notes(notes: Sequence[TeamNote]) -> str:
    return "\n\n".join(f"### {n.agent}: {n.task}\n\n{_demote_headings(n.text)}" for n in notes)
