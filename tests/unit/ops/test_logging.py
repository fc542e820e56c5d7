"""Logs: one JSON line per event, ids bound, secrets redacted (exceptions included)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bi_engine import logging as bi_logging
from bi_engine.settings import Settings

pytestmark = pytest.mark.unit

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VySWQiOiIxIn0.c2lnbmF0dXJlLXZhbHVl"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    bi_logging.configure_logging(Settings(log_format="json"), stream=buffer)
    yield buffer
    root.handlers[:], level = saved
    root.setLevel(level)
    bi_logging.unbind("request_id", "job_id")


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_one_json_line_per_event_with_bound_ids(captured: io.StringIO) -> None:
    bi_logging.bind(request_id="req-1", job_id="job-1")
    bi_logging.get_logger("test").info("job_started", attempt=1)
    (line,) = lines(captured)
    assert line["event"] == "job_started"
    assert line["request_id"] == "req-1"
    assert line["job_id"] == "job-1"
    assert line["level"] == "info"


def test_secrets_are_redacted_everywhere(captured: io.StringIO) -> None:
    log = bi_logging.get_logger("test")
    log.info(
        "request",
        authorization=f"Bearer {JWT}",
        headers={"Authorization": f"Bearer {JWT}", "X-Api-Key": "sk-abcdef123456"},
        url=f"/api/business-intelligence/events?token={JWT}",
        api_key="sk-abcdef123456",
        dsn="postgresql://bi:hunter2@db/bi",
    )
    try:
        raise RuntimeError(f"upstream said Bearer {JWT} with key sk-abcdef123456")
    except RuntimeError:
        log.exception("failed")
    logging.getLogger("third.party").warning("calling with %s", f"Authorization: Bearer {JWT}")
    text = captured.getvalue()
    assert JWT not in text
    assert "sk-abcdef123456" not in text
    assert "hunter2" not in text
    assert text.count("[REDACTED]") >= 7
    assert len(lines(captured)) == 3


def test_console_format_in_development() -> None:
    settings = Settings(environment="development")
    assert settings.effective_log_format == "console"
