"""Figures a suite measured (kills, counts, rates), shown in pytest's terminal summary.

Tests call :func:`record`; each suite's conftest prints its own lines at the end of the run,
so ``pytest tests/reliability`` ends with what was tried and what came of it.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

_FIGURES: defaultdict[str, list[str]] = defaultdict(list)


def record(suite: str, line: str) -> None:
    _FIGURES[suite].append(line)


def lines(suite: str) -> list[str]:
    return list(_FIGURES[suite])


def summarize(suite: str, reporter: pytest.TerminalReporter) -> None:
    """Write ``suite``'s figures through pytest's terminal reporter."""
    found = lines(suite)
    if not found:
        return
    reporter.write_sep("-", f"{suite} figures")
    for line in found:
        reporter.write_line(line)
