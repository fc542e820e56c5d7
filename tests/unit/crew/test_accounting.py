"""Tokens and cost per job come from the chain's own call records."""

from __future__ import annotations

import pytest

from workers.narration import accounting
from workers.narration.accounting import CallRecord, Ledger

pytestmark = pytest.mark.unit


def test_cost_from_the_local_price_list_in_eur() -> None:
    cost = accounting.cost_eur("openai/gpt-4o-mini", 1_000_000, 1_000_000)
    # gpt-4o-mini: 0.15 USD per million prompt tokens, 0.60 per million completion tokens
    assert cost == pytest.approx((0.15 + 0.60) * accounting.USD_TO_EUR)


def test_unknown_models_cost_nothing() -> None:
    assert accounting.cost_eur("ollama/some-local-model", 500, 500) == 0.0


def test_ledger_totals_tried_skipped_and_writer() -> None:
    ledger = Ledger()
    ledger.add(CallRecord("anthropic/claude", "claude", "skipped", reason="confidential"))
    ledger.add(CallRecord("openai/gpt-4o-mini", "gpt-4o-mini", "success", 100, 20, 0.5))
    ledger.add(CallRecord("openai/gpt-4o-mini", "gpt-4o-mini", "timeout"))
    ledger.add(CallRecord("pattern", "pattern", "success"))
    totals = ledger.totals()
    assert (totals.prompt_tokens, totals.completion_tokens, totals.cost_eur) == (100, 20, 0.5)
    assert ledger.tried() == ["openai/gpt-4o-mini"]
    assert ledger.skipped() == [{"provider": "anthropic/claude", "reason": "confidential"}]
    assert ledger.last_writer() == "pattern"
    assert len(ledger.drain()) == 4
    assert ledger.drain() == []
