"""The circuit breaker per provider: opens after repeated failures, one trial after a pause."""

from __future__ import annotations

import pytest

from workers.narration.breaker import BreakerBoard, CircuitBreaker

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_and_half_opens_after_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=2, cooldown_s=10, clock=clock)
    breaker.record_failure()
    assert breaker.allow()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    clock.now = 10.0
    assert breaker.state == "half_open"
    assert breaker.allow(), "one trial call"
    assert not breaker.allow(), "only one trial at a time"
    breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.allow()


def test_a_failed_trial_reopens_at_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown_s=5, clock=clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now = 5.0
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now = 9.0
    assert not breaker.allow()


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(threshold=2)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == "closed"


def test_board_keeps_one_breaker_per_provider() -> None:
    board = BreakerBoard(threshold=1)
    board.get("openai/gpt-4o-mini").record_failure()
    assert board.get("openai/gpt-4o-mini") is board.get("openai/gpt-4o-mini")
    assert board.states() == {"openai/gpt-4o-mini": "open"}
    assert board.get("ollama/llama3.1").allow()
