"""A front end on another origin follows a job with the JS client, in chromium, through CORS."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.browser.conftest import shoot
from tests.browser.engine import Engine

pytestmark = pytest.mark.acceptance


def open_site(page: Any, origin: str, engine: Engine, user_id: str) -> None:
    query = urlencode({"engine": engine.url, "token": engine.token(user_id), "sleep": "1"})
    page.goto(f"{origin}/site/index.html?{query}")


def test_a_page_on_an_allowed_origin_follows_a_job_with_the_client(
    page: Any, engine: Engine, other_origin: str
) -> None:
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request))
    open_site(page, other_origin, engine, f"vue-{uuid.uuid4().hex[:8]}")
    page.wait_for_selector("#state:text-matches('done|failed')", timeout=60_000)
    shoot(page, "cross-origin-followed")
    outcome = page.evaluate("window.outcome")

    assert outcome.get("error") is None, outcome
    assert outcome["transport"] == "eventsource"
    seqs = [event["seq"] for event in outcome["events"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert outcome["events"][0]["data"] == {"status": "queued"}
    assert any(event["kind"] == "progress" for event in outcome["events"])
    assert outcome["terminal"] == "completed"
    assert outcome["resumed"] == seqs[2:]
    assert outcome["resumedTerminal"] == "completed"
    assert outcome["result"]["status"] == "completed"
    assert outcome["jobId"] in outcome["listed"]

    streams = [r for r in requests if r.resource_type == "eventsource"]
    assert streams
    assert all(r.url.startswith(engine.url) for r in streams)
    assert all("token=" in r.url for r in streams)
    assert any("last_event_id=2" in r.url for r in streams)
    preflighted = [r for r in requests if r.method == "OPTIONS"]
    assert all(r.url.startswith(engine.url) for r in preflighted)
    assert page.console.errors == []


def test_a_page_on_an_origin_not_allowed_is_refused_by_the_browser(
    page: Any, engine: Engine, foreign_origin: str
) -> None:
    open_site(page, foreign_origin, engine, f"eve-{uuid.uuid4().hex[:8]}")
    page.wait_for_selector("#state:text('failed')", timeout=30_000)
    outcome = page.evaluate("window.outcome")
    assert outcome["status"] == 0  # the browser hid the answer: CORS, not the engine, said no
    assert "cannot be reached" in outcome["error"]
    assert any("CORS" in message for message in page.console.errors)
