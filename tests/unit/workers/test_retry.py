"""Which failures are retried, with what delay and which error code."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import httpx
import psycopg
import pytest

from bi_engine.errors import ConfigurationError
from workers import retry
from workers.analytics.errors import InvalidData, Problem

pytestmark = pytest.mark.unit


class RateLimitError(Exception):
    """Named like the LLM clients' exception (matched by name, never imported)."""

    code = "rate_limit_exceeded"


class Upstream(Exception):
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        super().__init__(f"upstream answered {status_code}")


def _status_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://llm.local/v1/chat")
    response = httpx.Response(status, request=request)
    return httpx.HTTPStatusError("bad status", request=request, response=response)


@pytest.mark.parametrize(
    "exc",
    [
        retry.TransientJobError("flaky"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        httpx.ConnectError("connection refused"),
        TimeoutError(),
        _status_error(503),
        _status_error(429),
        RateLimitError("slow down"),
        Upstream(502),
    ],
)
def test_temporary_problems_are_retried(exc: Exception) -> None:
    classified = retry.classify(exc)
    assert (classified.code, classified.transient) == ("transient_error", True)


def test_bad_data_from_the_analytics_fails_with_its_problems() -> None:
    exc = InvalidData([Problem(("data", "runs", 3, "started_at"), "not a date")])
    classified = retry.classify(exc)
    assert (classified.code, classified.transient) == ("invalid_data", False)
    assert classified.message == "data.runs.3.started_at: not a date"
    assert classified.details == [{"loc": ["data", "runs", 3, "started_at"], "msg": "not a date"}]


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (retry.InvalidJobData("no rows"), "invalid_data"),
        (retry.UnsupportedType(), "unsupported_type"),
        (ConfigurationError(), "configuration_error"),
    ],
)
def test_engine_errors_keep_their_code_and_are_not_retried(exc: Exception, code: str) -> None:
    classified = retry.classify(exc)
    assert (classified.code, classified.transient) == (code, False)


@pytest.mark.parametrize(
    "exc", [ValueError("secret=hunter2 broke"), _status_error(404), KeyError("x")]
)
def test_anything_else_is_a_bug_whose_text_is_not_shown(exc: Exception) -> None:
    classified = retry.classify(exc)
    assert (classified.code, classified.transient, classified.is_bug) == (
        "internal_error",
        False,
        True,
    )
    assert "hunter2" not in classified.message


def test_backoff_doubles_from_two_seconds_with_jitter() -> None:
    rng = random.Random(7)
    for attempt, ceiling in ((1, 2.0), (2, 4.0), (3, 8.0), (20, retry.MAX_DELAY_S)):
        delays = [retry.backoff_s(attempt, rng) for _ in range(200)]
        assert 0.75 * ceiling <= min(delays) < max(delays) <= 1.25 * ceiling


def test_the_strategy_retries_when_told_and_hands_back_shutdowns() -> None:
    strategy = retry.EngineRetryStrategy()
    before = datetime.now(UTC)
    later = strategy.get_retry_decision(exception=retry.RetryLater(3.0, "flaky"), job=None)
    assert later is not None
    assert later.retry_at is not None
    assert 2.9 <= (later.retry_at - before).total_seconds() <= 3.5
    now = strategy.get_retry_decision(exception=asyncio.CancelledError(), job=None)
    assert now is not None
    assert now.retry_at is not None
    assert (now.retry_at - before).total_seconds() < 0.5
    for exc in (retry.JobFailed("invalid_data"), ValueError()):
        assert strategy.get_retry_decision(exception=exc, job=None) is None


def test_a_database_outage_around_the_pipeline_is_retried_a_few_times() -> None:
    strategy = retry.EngineRetryStrategy()

    class Job:
        def __init__(self, attempts: int) -> None:
            self.attempts = attempts

    outage = psycopg.OperationalError("connection refused")
    assert strategy.get_retry_decision(exception=outage, job=Job(0)) is not None
    assert strategy.get_retry_decision(exception=outage, job=Job(3)) is None
