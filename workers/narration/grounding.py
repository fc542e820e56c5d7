"""The Quality Reviewer's check: every number in the narrative must be a computed one.

A number in the text is *grounded* when it equals, up to the rounding shown, a value the
analytics computed: a KPI value, a number in a finding's evidence, in a recommendation's
estimated savings, a roadmap phase, or a number the analytics wrote into their own titles and
labels. Fractions may be written as percentages (0.623 → 62.3%, with the sign), signs may be dropped
("fell 12.3%" for ``change_pct = -12.3``) and large figures scaled ("1.95 million").

An ungrounded number close to a computed one (within ``CORRECT_WITHIN``) is corrected to it;
any other ungrounded number takes its sentence with it. The counts go into the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final

from bi_engine.domain.result import Analysis

CORRECT_WITHIN: Final = 0.02
"""Relative distance under which a wrong figure is taken for a mis-copied computed one."""

_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?Z?)?\b")
_LIST_MARKER = re.compile(r"^(\s*)\d+[.)](?=\s)", re.MULTILINE)
_NUMBER = re.compile(
    r"(?<![A-Za-z_\d.,:/])"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\d])"
    r"(?P<pct>\s?%|\s(?:percent|per cent)\b)?"
    r"(?:\s?(?P<scale>thousand|million|billion|bn|k|M)\b)?"
)
_SCALES: Final = {
    None: Decimal(1),
    "thousand": Decimal(1_000),
    "k": Decimal(1_000),
    "million": Decimal(1_000_000),
    "M": Decimal(1_000_000),
    "billion": Decimal(1_000_000_000),
    "bn": Decimal(1_000_000_000),
}
_MAX_FIXES: Final = 200


@dataclass(frozen=True, slots=True)
class Issue:
    number: str
    action: str
    """``corrected`` or ``removed``."""
    replacement: str | None = None


@dataclass
class Grounded:
    text: str
    checked: int = 0
    issues: list[Issue] = field(default_factory=list)

    @property
    def corrected(self) -> int:
        return sum(1 for i in self.issues if i.action == "corrected")

    @property
    def removed(self) -> int:
        return sum(1 for i in self.issues if i.action == "removed")


@dataclass(frozen=True)
class Facts:
    """What a narrative may quote: numbers, date strings and names the analytics produced."""

    numbers: tuple[Decimal, ...]
    percents: tuple[Decimal, ...]
    """``numbers`` plus every fraction as a percentage (for figures written with ``%``)."""
    dates: frozenset[str]
    names: tuple[str, ...]
    """Analytics-written strings (subjects, titles, labels) stripped before numbers are read."""

    @classmethod
    def of(cls, analysis: Analysis, *, extra_text: Iterable[str] = ()) -> Facts:
        """The facts of one analysis; ``extra_text`` (the user's own question) may be quoted."""
        numbers: set[Decimal] = set()
        strings: set[str] = set()
        _walk(analysis.model_dump(exclude={"summary"}), numbers, strings)
        for text in extra_text:
            strings.add(text)
        for text in strings:
            for match in _NUMBER.finditer(_DATE.sub(" ", text)):
                numbers.add(_decimal(match.group("num")))
        dates = {m.group(0)[:10] for s in strings for m in _DATE.finditer(s)}
        names = tuple(sorted((s for s in strings if len(s) >= 3), key=len, reverse=True))
        plain = tuple(sorted({abs(n) for n in numbers if n.is_finite()}))
        percents = tuple(sorted(set(plain) | {n * 100 for n in plain if n <= 1}))
        return cls(plain, percents, frozenset(dates), names)


def _walk(node: Any, numbers: set[Decimal], strings: set[str]) -> None:
    if isinstance(node, bool) or node is None:
        return
    if isinstance(node, int | float):
        numbers.add(_decimal(repr(node)))
    elif isinstance(node, str):
        strings.add(node)
    elif isinstance(node, dict):
        for value in node.values():
            _walk(value, numbers, strings)
    elif isinstance(node, list | tuple):
        for value in node:
            _walk(value, numbers, strings)


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:
        return Decimal(0)


# ----------------------------------------------------------------------------- checking


@dataclass(frozen=True, slots=True)
class _Found:
    start: int
    end: int
    num_start: int
    num_end: int
    text: str
    value: Decimal
    decimals: int
    scale: Decimal
    percent: bool


def ground(text: str, facts: Facts) -> Grounded:
    """Check ``text``; correct or remove every ungrounded number."""
    result = Grounded(text)
    checked = _numbers(text, facts)
    result.checked = len(checked)
    for _ in range(_MAX_FIXES):
        bad = next((n for n in _numbers(result.text, facts) if not _grounded(n, facts)), None)
        if bad is None:
            break
        result.text, issue = _fix(result.text, bad, facts)
        result.issues.append(issue)
    result.text = _tidy(result.text)
    return result


def ungrounded(text: str, facts: Facts) -> list[str]:
    """The numbers in ``text`` that the facts do not support (for the reviewer's tool)."""
    return [n.text for n in _numbers(text, facts) if not _grounded(n, facts)]


def _numbers(text: str, facts: Facts) -> list[_Found]:
    masked = _mask(text, facts)
    found = []
    for match in _NUMBER.finditer(masked):
        raw = match.group("num")
        decimals = len(raw.split(".", 1)[1]) if "." in raw else 0
        found.append(
            _Found(
                match.start(),
                match.end(),
                match.start("num"),
                match.end("num"),
                match.group(0),
                _decimal(raw),
                decimals,
                _SCALES.get(match.group("scale"), Decimal(1)),
                bool(match.group("pct")),
            )
        )
    return found


def _mask(text: str, facts: Facts) -> str:
    """Blank out what is not a figure to check: quoted names, list markers, known dates."""
    masked = _LIST_MARKER.sub(
        lambda m: m.group(1) + " " * (len(m.group(0)) - len(m.group(1))), text
    )
    for name in facts.names:
        if any(ch.isdigit() for ch in name) and name in masked:
            masked = masked.replace(name, " " * len(name))
    return _DATE.sub(lambda m: _mask_date(m, facts), masked)


def _mask_date(match: re.Match[str], facts: Facts) -> str:
    token = match.group(0)
    if token[:10] in facts.dates:
        return " " * len(token)
    return token  # an unknown date: its parts are checked (and fail) like any number


def _grounded(found: _Found, facts: Facts) -> bool:
    return any(_same(candidate, found) for candidate in _near(found, facts))


def _near(found: _Found, facts: Facts) -> Iterator[Decimal]:
    target = found.value * found.scale
    tolerance = found.scale * Decimal(1) / (Decimal(10) ** found.decimals)
    for candidate in _pool(found, facts):
        if abs(candidate - target) <= tolerance:
            yield candidate


def _pool(found: _Found, facts: Facts) -> tuple[Decimal, ...]:
    return facts.percents if found.percent else facts.numbers


def _same(candidate: Decimal, found: _Found) -> bool:
    quantum = Decimal(1).scaleb(-found.decimals)
    scaled = candidate / found.scale
    return any(
        scaled.quantize(quantum, rounding=mode) == found.value
        for mode in (ROUND_HALF_UP, ROUND_HALF_EVEN)
    )


def _closest(found: _Found, facts: Facts) -> Decimal | None:
    target = found.value * found.scale
    pool = _pool(found, facts)
    if target == 0 or not pool:
        return None
    best = min(pool, key=lambda c: abs(c - target))
    return best if abs(best - target) / abs(target) <= Decimal(str(CORRECT_WITHIN)) else None


def _fix(text: str, bad: _Found, facts: Facts) -> tuple[str, Issue]:
    closest = _closest(bad, facts)
    if closest is not None:
        replacement = _format_like(closest / bad.scale, bad)
        fixed = text[: bad.num_start] + replacement + text[bad.num_end :]
        return fixed, Issue(bad.text.strip(), "corrected", replacement)
    start, end = _sentence_around(text, bad.start, bad.end)
    whole_line = (start == 0 or text[start - 1] == "\n") and text[end : end + 1] in ("", "\n")
    if whole_line:
        end += 1  # the line's own newline goes with it
    return text[:start] + text[end:], Issue(bad.text.strip(), "removed")


def _format_like(value: Decimal, like: _Found) -> str:
    quantum = Decimal(1).scaleb(-like.decimals)
    rounded = value.quantize(quantum, rounding=ROUND_HALF_UP)
    if "," in like.text:
        return f"{rounded:,}"
    return f"{rounded}"


_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")


def _sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence (or list item, or table row) holding ``text[start:end]``."""
    begin = 0
    for match in _SENTENCE_END.finditer(text, 0, start):
        begin = match.end()
    after = _SENTENCE_END.search(text, end)
    if after is None:
        return begin, len(text)
    stop = after.end() if after.group(0) != "\n" else after.start()
    return begin, stop


def _tidy(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        cleaned = re.sub(r"[ \t]{2,}", " ", line).rstrip()
        if re.fullmatch(r"\s*([-*+]|\d+[.)])?\s*", cleaned) and line.strip():
            continue  # a list item whose only sentence was removed
        lines.append(cleaned)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
