"""Errors the analytics raise, each a name plus a docstring that doubles as the message."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

Loc = tuple[str | int, ...]

MAX_PROBLEMS = 50


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input, at ``loc`` (e.g. ``("data", "runs", 3, "started_at")``)."""

    loc: Loc
    msg: str

    def as_dict(self) -> dict[str, object]:
        return {"loc": list(self.loc), "msg": self.msg}


class AnalyticsError(Exception):
    """The analytics could not run."""


class InvalidData(AnalyticsError):
    """The data does not have a shape the analytics accept."""

    code = "invalid_data"

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)[:MAX_PROBLEMS]
        if not self.problems:
            self.problems = [Problem(("data",), "invalid data")]
        first = self.problems[0]
        where = ".".join(str(part) for part in first.loc)
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{where}: {first.msg}{more}")

    def details(self) -> list[dict[str, object]]:
        """The problems as JSON, for the ``details`` of the error envelope."""
        return [problem.as_dict() for problem in self.problems]


class ProblemLog:
    """Collects problems while a whole input is checked, so one error lists them all."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, loc: Loc, msg: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(loc, msg))

    def __bool__(self) -> bool:
        return bool(self.problems)

    def raise_if_any(self) -> None:
        if self.problems:
            raise InvalidData(self.problems)
