"""Tokens and cost per job, from the record of every LLM call the chain made.

Each provider call (success or not) becomes one ``CallRecord``; the job's totals are sums over
its records, never crewai's usage metrics (which double-count shared LLM instances). Records
are handed to the database in batches with :meth:`Ledger.drain`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

import litellm

Outcome = Literal["success", "error", "timeout", "rate_limited", "skipped"]

USD_TO_EUR: Final = 0.92
"""Fixed conversion for the provider price lists (litellm's are in USD)."""


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One request to one provider (or one skip of a provider, with its reason)."""

    provider: str
    model: str
    outcome: Outcome
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_eur: float = 0.0
    duration_ms: float | None = None
    reason: str = ""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Totals:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_eur: float = 0.0

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cost_eur + other.cost_eur,
        )


def totals_of(records: Iterable[CallRecord]) -> Totals:
    total = Totals()
    for r in records:
        total = total + Totals(r.prompt_tokens, r.completion_tokens, r.cost_eur)
    return total


class Ledger:
    """The job's call records; thread-safe (crews call the LLM from worker threads)."""

    def __init__(self) -> None:
        self._records: list[CallRecord] = []
        self._saved = 0
        self._lock = threading.Lock()

    def add(self, record: CallRecord) -> None:
        with self._lock:
            self._records.append(record)

    @property
    def records(self) -> list[CallRecord]:
        with self._lock:
            return list(self._records)

    def drain(self) -> list[CallRecord]:
        """The records not handed out before (to write them to ``llm_calls``)."""
        with self._lock:
            fresh = self._records[self._saved :]
            self._saved = len(self._records)
            return fresh

    def totals(self) -> Totals:
        return totals_of(self.records)

    def since(self, mark: int) -> list[CallRecord]:
        with self._lock:
            return self._records[mark:]

    def mark(self) -> int:
        with self._lock:
            return len(self._records)

    def tried(self) -> list[str]:
        """Providers the job actually sent requests to, in first-use order (not ``pattern``)."""
        seen: list[str] = []
        for r in self.records:
            if r.outcome != "skipped" and r.provider != "pattern" and r.provider not in seen:
                seen.append(r.provider)
        return seen

    def skipped(self) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        for r in self.records:
            entry = {"provider": r.provider, "reason": r.reason}
            if r.outcome == "skipped" and entry not in out:
                out.append(entry)
        return out

    def last_writer(self) -> str | None:
        """The provider of the last successful call: who wrote the final words."""
        for r in reversed(self.records):
            if r.outcome == "success":
                return r.provider
        return None


def cost_eur(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """Price of a call from litellm's local price list; 0 for models it does not know."""
    try:
        prompt_usd, completion_usd = litellm.cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
    except Exception:  # unknown model (local servers): no price to charge
        return 0.0
    return float(prompt_usd + completion_usd) * USD_TO_EUR
