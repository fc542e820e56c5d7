"""A circuit breaker per LLM provider, shared by every job of a worker process.

A provider that keeps failing is skipped for a while instead of costing each job a timeout;
after the pause one trial call is let through, and its outcome closes or re-opens the circuit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass
class CircuitBreaker:
    """Closed → (``threshold`` consecutive failures) → open for ``cooldown_s`` → half-open."""

    threshold: int = 3
    cooldown_s: float = 30.0
    clock: Clock = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _trial_in_flight: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """May a call go to this provider now? In half-open state, only one trial at a time."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half_open" and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self.failures = 0
            self.opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self._trial_in_flight or self.failures >= self.threshold:
                self.opened_at = self.clock()
            self._trial_in_flight = False


@dataclass
class BreakerBoard:
    """One breaker per provider name, created on first use."""

    threshold: int = 3
    cooldown_s: float = 30.0
    clock: Clock = time.monotonic
    _breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, provider: str) -> CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get(provider)
            if breaker is None:
                breaker = CircuitBreaker(self.threshold, self.cooldown_s, self.clock)
                self._breakers[provider] = breaker
            return breaker

    def states(self) -> dict[str, str]:
        with self._lock:
            breakers = dict(self._breakers)
        return {name: breaker.state for name, breaker in breakers.items()}
