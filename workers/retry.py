"""Which failures deserve another attempt, when it runs, and the error code users see.

Transient failures (the database, the network, an LLM's 5xx or timeout) are retried up to
``MAX_ATTEMPTS`` attempts in all, with exponential backoff and jitter. Bad data fails at
once. Anything unexpected is a bug: ``internal_error``, no retry, logged with its traceback.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
import procrastinate
import psycopg
import psycopg_pool

from bi_engine.errors import BIError

MAX_ATTEMPTS: Final = 3
BASE_DELAY_S: Final = 2.0
MAX_DELAY_S: Final = 300.0

# Exception class names of the LLM client libraries (litellm, openai, anthropic) that mean
# "try again later". Matched by name so this module imports none of them.
_TRANSIENT_NAMES: Final = frozenset(
    {
        "APIConnectionError",
        "APITimeoutError",
        "Timeout",
        "RateLimitError",
        "ServiceUnavailableError",
        "InternalServerError",
        "BadGatewayError",
        "GatewayTimeoutError",
    }
)
_DATA_CODES: Final = frozenset({"invalid_data", "unsupported_type"})
_DATABASE_DOWN: Final = (psycopg.OperationalError, psycopg_pool.PoolTimeout)


class TransientJobError(BIError):
    """A temporary problem stopped this attempt; it will be tried again."""

    code = "transient_error"


class InvalidJobData(BIError):
    """The submitted data cannot be analysed."""

    status_code = 422
    code = "invalid_data"


class UnsupportedType(BIError):
    """This analysis type cannot run on this worker yet."""

    status_code = 422
    code = "unsupported_type"


@dataclass(frozen=True, slots=True)
class Classified:
    """What the pipeline does with a failure."""

    code: str
    message: str
    transient: bool
    details: Any = None

    @property
    def is_bug(self) -> bool:
        return self.code == "internal_error"


def classify(exc: BaseException) -> Classified:
    """Map a runner's exception to an error code and a retry decision."""
    code = getattr(exc, "code", None)
    if isinstance(exc, BIError) or code in _DATA_CODES:
        return _coded(exc, str(code))
    if _is_transient(exc):
        return Classified("transient_error", _describe(exc), transient=True)
    return Classified(
        "internal_error",
        "An unexpected error stopped this analysis. It has been logged for the operators.",
        transient=False,
    )


def backoff_s(attempt: int, rng: random.Random | None = None) -> float:
    """Delay after failed attempt ``attempt`` (1-based): about 2 s, 4 s, 8 s... with jitter."""
    ceiling = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** max(0, attempt - 1))
    return round((rng or random).uniform(0.75 * ceiling, 1.25 * ceiling), 3)


class RetryLater(Exception):
    """This attempt failed transiently; the job runs again after ``delay_s`` seconds."""

    def __init__(self, delay_s: float, reason: str) -> None:
        self.delay_s = delay_s
        super().__init__(reason)


class JobFailed(Exception):
    """The analysis failed for good; its row already says why."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(code)


class EngineRetryStrategy(procrastinate.BaseRetryStrategy):
    """Retry exactly when the pipeline says so, and hand back jobs stopped by a shutdown.

    The pipeline has already written the ``retrying`` event and put the analysis back to
    ``queued``; procrastinate only reschedules its own job row. When the database itself
    failed the pipeline (it could not load the job or record its end), the job is tried
    again later too: the attempt fence keeps that safe.
    """

    def get_retry_decision(
        self, *, exception: BaseException, job: Any
    ) -> procrastinate.RetryDecision | None:
        if isinstance(exception, RetryLater):
            return _retry_in(exception.delay_s)
        if isinstance(exception, asyncio.CancelledError):
            # the task re-raises CancelledError only for a worker shutdown: run it again now
            return _retry_in(0.0)
        if isinstance(exception, _DATABASE_DOWN) and getattr(job, "attempts", 0) < MAX_ATTEMPTS:
            # the database failed the pipeline itself (loading the job, recording its end)
            return _retry_in(backoff_s(getattr(job, "attempts", 0) + 1))
        return None


def _retry_in(seconds: float) -> procrastinate.RetryDecision:
    return procrastinate.RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=seconds))


def _coded(exc: BaseException, code: str) -> Classified:
    transient = code == "transient_error"
    message = getattr(exc, "message", None) or str(exc) or code
    details_attr = getattr(exc, "details", None)
    details = details_attr() if callable(details_attr) else details_attr
    return Classified(code, str(message)[:1000], transient=transient, details=details)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, psycopg.OperationalError | psycopg_pool.PoolTimeout):
        return True
    if isinstance(exc, psycopg.errors.SerializationFailure | psycopg.errors.DeadlockDetected):
        return True
    if isinstance(exc, httpx.TransportError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        return _transient_status(exc.response.status_code)
    if any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and _transient_status(status)


def _transient_status(status: int) -> bool:
    return status == 429 or status >= 500


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
