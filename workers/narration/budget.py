"""The optional monthly LLM budget: once spent, jobs use local providers only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from bi_engine.db import llm_usage
from bi_engine.settings import Settings


@dataclass(frozen=True, slots=True)
class Budget:
    limit_eur: float | None
    spent_eur: float = 0.0

    @property
    def exceeded(self) -> bool:
        return self.limit_eur is not None and self.spent_eur >= self.limit_eur

    def as_dict(self) -> dict[str, Any]:
        return {"limit_eur": self.limit_eur, "spent_eur": round(self.spent_eur, 6)}


async def current(conn: psycopg.AsyncConnection[Any] | None, settings: Settings) -> Budget:
    """This month's spend against ``BI_LLM_MONTHLY_BUDGET_EUR`` (no limit: nothing to read)."""
    limit = settings.llm_monthly_budget_eur
    if limit is None or conn is None:
        return Budget(limit)
    return Budget(limit, await llm_usage.month_spend_eur(conn))
