"""Queue estimates, documents and the small parsers of the API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from bi_engine.api import report, waiting
from bi_engine.domain import jobs

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def snap(position: int, workers: int = 1, running: int = 0, avg: float | None = 30.0):
    return jobs.QueueSnapshot(position=position, workers=workers, running=running, avg_run_s=avg)


def test_no_live_worker_means_no_estimate() -> None:
    assert jobs.estimate_start(snap(1, workers=0), concurrency=4, now=NOW) is None


def test_a_free_slot_means_now() -> None:
    assert jobs.estimate_start(snap(3, running=1), concurrency=4, now=NOW) == NOW


def test_jobs_ahead_start_in_waves_of_the_capacity() -> None:
    # 2 workers x 2 slots, all busy: positions 1-4 wait one run, 5-8 two runs.
    first = jobs.estimate_start(snap(4, workers=2, running=4), concurrency=2, now=NOW)
    second = jobs.estimate_start(snap(5, workers=2, running=4), concurrency=2, now=NOW)
    assert first == NOW + timedelta(seconds=30)
    assert second == NOW + timedelta(seconds=60)


def test_without_recent_runs_a_default_run_time_is_assumed() -> None:
    estimate = jobs.estimate_start(snap(2, running=1, avg=None), concurrency=1, now=NOW)
    assert estimate == NOW + timedelta(seconds=jobs.DEFAULT_RUN_S * 2)


@pytest.mark.parametrize("raw", ["nope", "", "1234", "../etc", "0b1e" * 20])
def test_a_job_id_that_is_not_a_uuid_is_not_found(raw: str) -> None:
    with pytest.raises(jobs.JobNotFound):
        jobs.parse_job_id(raw)


def _row(**overrides: Any) -> dict[str, Any]:
    cet = timezone(timedelta(hours=1))
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "type": "test",
        "status": "failed",
        "priority": "normal",
        "sensitivity": "normal",
        "agent_team": None,
        "progress": 40,
        "current_step": "Reading",
        "attempts": 2,
        "abort_requested_at": None,
        "created_at": datetime(2026, 11, 23, 11, 0, tzinfo=cet),
        "queued_at": datetime(2026, 11, 23, 11, 0, tzinfo=cet),
        "started_at": None,
        "finished_at": None,
        "error_code": "invalid_data",
        "error_message": "data.runs: must be a list",
        "result": None,
    }
    row.update(overrides)
    return row


def test_status_document_matches_its_schema_and_speaks_utc() -> None:
    document = jobs.status_document(_row(), position=3)
    jobs.JobStatus.model_validate(document)
    assert document["position_in_queue"] is None  # only while queued
    assert document["error"] == {"code": "invalid_data", "message": "data.runs: must be a list"}
    assert document["created_at"] == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert document["created_at"].tzinfo == UTC


def test_result_is_409_until_completed() -> None:
    with pytest.raises(jobs.ResultNotReady) as running:
        jobs.result_document(_row(status="running"))
    assert running.value.status_code == 409
    assert running.value.details["status"] == "running"
    with pytest.raises(jobs.NoResult) as failed:
        jobs.result_document(_row())
    assert failed.value.details["error"]["code"] == "invalid_data"
    done = jobs.result_document(_row(status="completed", result={"analysis": {}}, error_code=None))
    jobs.JobResult.model_validate(done)


def test_links_carry_the_stream_token_only_on_stream_urls() -> None:
    job_id = uuid.uuid4()
    urls = jobs.links(job_id, "tok")
    assert urls["status_url"] == f"/api/business-intelligence/jobs/{job_id}"
    assert urls["events_url"].endswith("/events?token=tok")
    assert urls["websocket_url"] == f"/api/business-intelligence/ws/jobs/{job_id}?token=tok"
    assert "token" not in urls["result_url"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("wait=10", 10),
        ("respond-async, wait=5", 5),
        ('wait="7"', 7),
        ("wait=600", 60),
        ("wait=abc", None),
        ("wait=-1", None),
        ("handling=lenient", None),
        ("WAIT = 3; foo", 3),
    ],
)
def test_prefer_wait(header: str | None, expected: int | None) -> None:
    assert waiting.preferred_wait(header) == expected


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (None, False),
        ("*/*", False),
        ("text/markdown", False),
        ("text/html", True),
        ("text/html,application/xhtml+xml,*/*;q=0.8", True),
        ("text/markdown, text/html;q=0.5", False),
        ("text/html;q=0", False),
        ("text/html;q=abc", False),
    ],
)
def test_report_negotiation(accept: str | None, html: bool) -> None:
    assert report.wants_html(accept) is html


def test_report_html_escapes_raw_html() -> None:
    page = report.to_html("# Title\n\n<script>alert(1)</script>\n\n| a |\n|---|\n| 1 |\n", _row())
    assert "<h1>Title</h1>" in page
    assert "<script>" not in page
    assert "<table>" in page


def test_batch_positions_follow_priority_then_id() -> None:
    a, b, c, d = (uuid.UUID(int=n) for n in (1, 2, 3, 4))
    before = {"high": 2, "normal": 3, "low": 5}
    members = [(d, "normal"), (a, "low"), (c, "high"), (b, "normal")]
    # high: 2 queued high + 1; normal: 2 high + 3 normal + c + (b before d)
    assert jobs.batch_positions(before, members) == [
        2 + 3 + 1 + 1 + 1,
        10 + 3 + 1,
        3,
        2 + 3 + 1 + 1,
    ]
