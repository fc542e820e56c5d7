"""``BI_LLM_CHAIN``: the providers a job may use, in order, and the walk down that list.

Every provider gets one request per call (``RETRIES_PER_PROVIDER`` = 0 and the SDK's own
retries off), with the configured timeout: a 429, a 5xx, a timeout or a refused connection
moves the call on to the next provider at once, inside the same job attempt, and that
provider is skipped for the rest of the job. A circuit breaker per provider, shared by the
jobs of one worker, skips providers that keep failing. ``pattern`` — the deterministic
narrator — closes every chain, so a job never ends without words.

Confidential jobs and jobs over the monthly budget use local providers only.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bi_engine.logging import get_logger
from bi_engine.settings import Settings
from workers.narration import accounting
from workers.narration.accounting import CallRecord, Ledger, Outcome
from workers.narration.breaker import BreakerBoard

with warnings.catch_warnings():  # litellm's import warns about its own typing (pydantic)
    warnings.simplefilter("ignore")
    import litellm

litellm.suppress_debug_info = True


def _warm_up() -> None:
    """One offline mock completion, so litellm's lazy imports (and their warnings) happen
    here, once, and not inside the first job's first provider call."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        litellm.completion(
            model="openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "warm-up"}],
            mock_response="ready",
        )


_warm_up()

log = get_logger("bi.narration.chain")

PATTERN: Final = "pattern"
LOCAL_FAMILIES: Final = frozenset({"ollama", "ollama_chat", "lm_studio", "llamafile"})
"""Providers that run on the operator's own machines: allowed for confidential data."""

RETRIES_PER_PROVIDER: Final = 0
"""Extra requests to the same provider before moving on (the next provider is the retry)."""

_BREAKER_NEUTRAL_STATUS: Final = frozenset({400, 404, 413, 422})
"""Errors about one request, not about the provider's health: they do not trip the breaker."""


@dataclass(frozen=True, slots=True)
class Provider:
    """One entry of the chain, e.g. ``openai/gpt-4o-mini`` and how to reach it."""

    name: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)

    @property
    def family(self) -> str:
        return self.name.split("/", 1)[0] if "/" in self.name else "openai"

    @property
    def local(self) -> bool:
        return self.family in LOCAL_FAMILIES


@dataclass(frozen=True, slots=True)
class Skip:
    provider: str
    reason: str
    """``confidential`` (cloud provider, confidential data) or ``budget`` (monthly budget spent)."""


@dataclass(frozen=True, slots=True)
class ChainPlan:
    """The providers one job may call, in order (``pattern`` implied at the end)."""

    configured: tuple[str, ...]
    providers: tuple[Provider, ...]
    skipped: tuple[Skip, ...] = ()

    @property
    def preferred(self) -> str:
        """Who should write the report if nothing fails."""
        return self.providers[0].name if self.providers else PATTERN


def plan_chain(
    settings: Settings,
    *,
    sensitivity: str = "normal",
    over_budget: bool = False,
    base_urls: Mapping[str, str] | None = None,
) -> ChainPlan:
    """The job's chain: ``settings.effective_llm_chain`` minus what the job may not use."""
    configured = settings.effective_llm_chain
    providers: list[Provider] = []
    skipped: list[Skip] = []
    for name in configured:
        if name == PATTERN:
            continue
        provider = _provider(name, settings, base_urls or {})
        if not provider.local and sensitivity == "confidential":
            skipped.append(Skip(name, "confidential"))
        elif not provider.local and over_budget:
            skipped.append(Skip(name, "budget"))
        else:
            providers.append(provider)
    return ChainPlan(tuple(configured), tuple(providers), tuple(skipped))


def _provider(name: str, settings: Settings, base_urls: Mapping[str, str]) -> Provider:
    family = name.split("/", 1)[0]
    base = base_urls.get(name) or base_urls.get(family)
    if family.startswith("ollama") and base is None:
        base = settings.ollama_host
    key = {"openai": settings.openai_api_key, "anthropic": settings.anthropic_api_key}.get(family)
    return Provider(name, base, key)


# ----------------------------------------------------------------------------- calls


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str
    """JSON text, as the model wrote it."""


@dataclass(frozen=True, slots=True)
class Completion:
    """A provider's answer: text, or tool calls to run first."""

    provider: str
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ProviderFailed(Exception):
    """The provider did not answer usefully."""

    def __init__(self, outcome: Outcome, detail: str, *, trips_breaker: bool = True) -> None:
        super().__init__(detail)
        self.outcome: Outcome = outcome
        self.trips_breaker = trips_breaker


Transport = Callable[[Provider, Sequence[Any], Sequence[Any] | None, float], Completion]


def litellm_transport(
    provider: Provider, messages: Sequence[Any], tools: Sequence[Any] | None, timeout_s: float
) -> Completion:
    """One chat completion through litellm: one HTTP request, no retries, a hard timeout."""
    kwargs: dict[str, Any] = {
        "model": provider.name,
        "messages": list(messages),
        "timeout": timeout_s,
        "num_retries": RETRIES_PER_PROVIDER,
        "max_retries": RETRIES_PER_PROVIDER,
    }
    if tools:
        kwargs["tools"] = list(tools)
    if provider.api_base:
        kwargs["api_base"] = provider.api_base
    if provider.api_key:
        kwargs["api_key"] = provider.api_key
    try:
        response = litellm.completion(**kwargs)
    except Exception as exc:
        raise classify(exc) from exc
    return _completion(provider.name, response)


def classify(exc: BaseException) -> ProviderFailed:
    """Map a provider error to the chain's outcome words (and whether it trips the breaker)."""
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__.lower()
    if status == 429 or "ratelimit" in name:
        return ProviderFailed("rate_limited", f"rate limited: {exc}")
    if "timeout" in name or isinstance(exc, TimeoutError):
        return ProviderFailed("timeout", f"timed out: {exc}")
    neutral = isinstance(status, int) and status in _BREAKER_NEUTRAL_STATUS
    return ProviderFailed("error", f"{type(exc).__name__}: {exc}", trips_breaker=not neutral)


def _completion(provider: str, response: Any) -> Completion:
    choices = getattr(response, "choices", None) or []
    if not choices:
        raise ProviderFailed("error", "the provider answered without a choice")
    message = choices[0].message
    calls = tuple(
        ToolCall(
            str(call.id or f"call_{i}"),
            str(call.function.name),
            str(call.function.arguments or "{}"),
        )
        for i, call in enumerate(getattr(message, "tool_calls", None) or [])
    )
    text = str(message.content or "")
    if not calls and not text.strip():
        raise ProviderFailed("error", "the provider answered with an empty message")
    usage = getattr(response, "usage", None)
    return Completion(
        provider,
        text,
        calls,
        int(getattr(usage, "prompt_tokens", 0) or 0),
        int(getattr(usage, "completion_tokens", 0) or 0),
    )


class ChainSession:
    """One job's walk down its chain.

    ``complete`` returns the first provider's answer, or ``None`` when every provider failed
    or was skipped: the caller then lets the pattern narrator answer. A provider that failed
    once is not asked again in this job.
    """

    def __init__(
        self,
        plan: ChainPlan,
        *,
        breakers: BreakerBoard,
        ledger: Ledger,
        timeout_s: float,
        transport: Transport = litellm_transport,
    ) -> None:
        self.plan = plan
        self.breakers = breakers
        self.ledger = ledger
        self.timeout_s = timeout_s
        self.transport = transport
        self._failed: set[str] = set()
        self._noted: set[str] = set()
        self._lock = threading.Lock()
        for skip in plan.skipped:
            self._note_skip(skip.provider, skip.reason)

    @property
    def exhausted(self) -> bool:
        with self._lock:
            return all(p.name in self._failed for p in self.plan.providers)

    def complete(self, messages: Sequence[Any], tools: Sequence[Any] | None) -> Completion | None:
        for provider in self.plan.providers:
            if self._is_failed(provider.name):
                continue
            breaker = self.breakers.get(provider.name)
            if not breaker.allow():
                self._note_skip(provider.name, "circuit_open")
                continue
            answer = self._attempt(provider, messages, tools)
            if answer is not None:
                return answer
        return None

    def _attempt(
        self, provider: Provider, messages: Sequence[Any], tools: Sequence[Any] | None
    ) -> Completion | None:
        breaker = self.breakers.get(provider.name)
        for _ in range(RETRIES_PER_PROVIDER + 1):
            started = time.perf_counter()
            try:
                answer = self.transport(provider, messages, tools, self.timeout_s)
            except ProviderFailed as failure:
                self._record_failure(provider, failure, started)
                if failure.trips_breaker:
                    breaker.record_failure()
                continue
            breaker.record_success()
            self._record_success(provider, answer, started)
            return answer
        with self._lock:
            self._failed.add(provider.name)
        return None

    def _is_failed(self, name: str) -> bool:
        with self._lock:
            return name in self._failed

    def _note_skip(self, provider: str, reason: str) -> None:
        with self._lock:
            if provider in self._noted:
                return
            self._noted.add(provider)
        self.ledger.add(CallRecord(provider, _model(provider), "skipped", reason=reason))

    def _record_failure(self, provider: Provider, failure: ProviderFailed, started: float) -> None:
        log.warning(
            "llm_provider_failed",
            provider=provider.name,
            outcome=failure.outcome,
            error=str(failure)[:300],
        )
        self.ledger.add(
            CallRecord(
                provider.name,
                _model(provider.name),
                failure.outcome,
                duration_ms=_ms(started),
                reason=str(failure)[:200],
            )
        )

    def _record_success(self, provider: Provider, answer: Completion, started: float) -> None:
        cost = accounting.cost_eur(provider.name, answer.prompt_tokens, answer.completion_tokens)
        self.ledger.add(
            CallRecord(
                provider.name,
                _model(provider.name),
                "success",
                answer.prompt_tokens,
                answer.completion_tokens,
                cost,
                _ms(started),
            )
        )

    def record_pattern_call(self) -> None:
        """The pattern narrator answered this call: free, no tokens, but on the record."""
        self.ledger.add(CallRecord(PATTERN, PATTERN, "success"))


def _model(provider: str) -> str:
    return provider.split("/", 1)[1] if "/" in provider else provider


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
