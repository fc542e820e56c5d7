"""From the AI Team's answers to the report's words, through the Quality Reviewer's check.

Each Report-team answer fills a section (the pattern narrator fills any that is missing or
empty); the Quality Reviewer may return corrected sections, which replace the drafts. Then
every section goes through the grounding check, and the counts become the result's
``quality`` object.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bi_engine.domain.result import Analysis
from workers.narration import grounding, report
from workers.narration.pattern import PatternNarrator

_HEADLINE = re.compile(r"^\s*(?:#+\s*)?\**\s*headline\s*\**\s*:\s*\**\s*(.+?)\s*\**\s*$", re.I)
_SECTION = re.compile(
    r"^\s*#{1,4}\s*(executive summary|technical notes|what this means for your business)\s*:?\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_SECTION_KEYS: Final = {
    "executive summary": "executive_summary",
    "technical notes": "technical_notes",
    "what this means for your business": "business_translation",
}
MAX_HEADLINE: Final = 200


@dataclass
class Story:
    """The report's narrative after the check."""

    headline: str
    summary: str
    technical_notes: str
    business_translation: str
    review_note: str
    team_notes: list[report.TeamNote] = field(default_factory=list)
    checked: int = 0
    corrected: int = 0
    removed: int = 0

    def quality(self) -> dict[str, Any]:
        return {
            "numbers_checked": self.checked,
            "ungrounded_numbers_corrected": self.corrected,
            "ungrounded_numbers_removed": self.removed,
        }

    def markdown(
        self, title: str, analysis: Analysis, team: Sequence[str], question: str | None
    ) -> str:
        words = report.Narrative(
            self.headline,
            self.summary,
            self.technical_notes,
            self.business_translation,
            self.review_note,
            self.team_notes,
        )
        return report.compose(title, analysis, words, team=team, question=question)


_LEFTOVER = re.compile(r"^\s*(Thought:|Action:)|\bAction Input:", re.MULTILINE)


def usable(text: str) -> bool:
    """An answer a reader may see: not empty, not a model's unfinished tool step."""
    return bool(text.strip()) and not _LEFTOVER.search(text)


def split_headline(text: str) -> tuple[str | None, str]:
    """``Headline: ...`` on the first non-empty line, and the rest."""
    lines = text.strip().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        match = _HEADLINE.match(line)
        if match:
            return match.group(1).strip().rstrip("."), "\n".join(lines[i + 1 :]).strip()
        break
    return None, text.strip()


def split_review(text: str) -> tuple[str, dict[str, str]]:
    """The reviewer's note, and the sections it corrected (by section key)."""
    matches = list(_SECTION.finditer(text))
    if not matches:
        return text.strip(), {}
    note = text[: matches[0].start()].strip()
    sections: dict[str, str] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip()
        if body:
            sections[_SECTION_KEYS[match.group(1).lower()]] = body
    return note, sections


def assemble(
    analysis: Analysis,
    texts: Mapping[str, str],
    narrator: PatternNarrator,
    *,
    notes: Sequence[tuple[str, str, str]] = (),
) -> Story:
    """The checked narrative. ``texts`` are the answers by task key; ``notes`` are the
    analysis tasks' answers as (AI Assistant, task title, text)."""
    texts = {key: text for key, text in texts.items() if usable(text)}
    note, revised = split_review(texts.get("quality_review", ""))
    drafts = {key: texts.get(key, "") for key in _SECTION_KEYS.values()} | revised
    headline, summary = split_headline(drafts["executive_summary"])
    facts = grounding.Facts.of(
        analysis, extra_text=[narrator.question] if narrator.question else ()
    )
    check = _Checker(facts)
    story = Story(
        headline=_headline(check(headline or ""), narrator),
        summary=check(summary) or narrator.executive_summary(),
        technical_notes=check(drafts["technical_notes"]) or narrator.technical_notes(),
        business_translation=check(drafts["business_translation"])
        or narrator.business_translation(),
        review_note="",
        team_notes=[report.TeamNote(a, t, check(x)) for a, t, x in notes if usable(x)],
    )
    note = check(note) or narrator.review_note(0)
    if check.corrected + check.removed:
        note = f"{note}\n\n{narrator.review_note(check.corrected + check.removed)}"
    story.review_note = note
    story.checked, story.corrected, story.removed = check.checked, check.corrected, check.removed
    return story


def _headline(text: str, narrator: PatternNarrator) -> str:
    text = " ".join(text.split()).strip().rstrip(".")
    if not text:
        return narrator.headline()
    return text if len(text) <= MAX_HEADLINE else text[: MAX_HEADLINE - 1].rstrip() + "…"


class _Checker:
    """Grounds texts one by one and keeps the counts."""

    def __init__(self, facts: grounding.Facts) -> None:
        self.facts = facts
        self.checked = 0
        self.corrected = 0
        self.removed = 0

    def __call__(self, text: str) -> str:
        if not text.strip():
            return ""
        result = grounding.ground(text, self.facts)
        self.checked += result.checked
        self.corrected += result.corrected
        self.removed += result.removed
        return result.text
