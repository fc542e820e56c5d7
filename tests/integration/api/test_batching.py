"""Group commit: concurrent submissions share a transaction, with the same writes and answers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bi_engine import submit
from bi_engine.api.submitter import Submitter
from bi_engine.auth.principal import Principal
from bi_engine.db import analyses, audit
from bi_engine.domain import submission
from tests.integration.api.conftest import API

pytestmark = pytest.mark.integration

PRIORITIES = ["low", "normal", "high", "normal", "low", "high", "high", "normal", "low", "normal"]


def request(priority: str, **data: Any) -> submission.AnalysisRequest:
    return submission.parse({"type": "test", "priority": priority, "data": data})


async def test_a_batch_writes_what_single_submissions_write(app, db, auth, client):
    state = app.state.engine
    await client.post(f"{API}/analyze", json={"type": "test", "priority": "normal"}, headers=auth())
    items = [
        (submit.Caller(Principal(f"user-{i}"), ip="10.0.0.1", request_id=f"r{i}"), request(p, n=i))
        for i, p in enumerate(PRIORITIES)
    ]
    async with state.pool.connection() as conn:
        results = await submit.create_jobs(conn, state.queue, state.settings, items)
    assert [r.row["priority"] for r in results] == PRIORITIES
    ids = [str(r.job_id) for r in results]
    with db() as conn:
        rows = conn.execute(
            "SELECT a.id, a.user_id, a.priority, a.status, p.priority AS queue_priority, p.args,"
            " i.data, (SELECT count(*) FROM analysis_events e WHERE e.job_id = a.id) AS events,"
            " (SELECT count(*) FROM audit_log l WHERE l.job_id = a.id"
            "   AND l.action = 'analysis_requested' AND l.request_id IS NOT NULL) AS audits"
            " FROM analyses a JOIN procrastinate_jobs p ON p.id = a.procrastinate_job_id"
            " JOIN analysis_inputs i ON i.job_id = a.id WHERE a.id = ANY(%s::uuid[])",
            (ids,),
        ).fetchall()
        first = conn.execute(
            "SELECT DISTINCT seq, kind, data FROM analysis_events WHERE job_id = ANY(%s::uuid[])",
            (ids,),
        ).fetchall()
    by_id = {str(row["id"]): row for row in rows}
    for i, job_id in enumerate(ids):
        row = by_id[job_id]
        assert (row["user_id"], row["status"], row["data"]) == (f"user-{i}", "queued", {"n": i})
        assert row["queue_priority"] == {"high": 20, "normal": 10, "low": 0}[PRIORITIES[i]]
        assert row["args"] == {"job_id": job_id}
        assert (row["events"], row["audits"]) == (1, 1)
    assert first == [{"seq": 1, "kind": "status", "data": {"status": "queued"}}]
    # the positions answered are the ones the database gives right after
    for result in results:
        status = await client.get(f"{API}/jobs/{result.job_id}", headers=auth("root", role="admin"))
        assert status.json()["position_in_queue"] == result.position, result.row["priority"]


async def test_concurrent_requests_are_grouped(app, client, auth, db):
    submitter = app.state.engine.submitter
    responses = await asyncio.gather(
        *(
            client.post(f"{API}/analyze", json={"type": "test", "priority": p}, headers=auth())
            for p in PRIORITIES * 3
        )
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["job_id"] for r in responses}) == 30
    assert all(r.headers["location"] == r.json()["status_url"] for r in responses)
    assert submitter.stats.jobs == 30
    assert submitter.stats.largest > 1
    assert submitter.stats.batches < 30
    text = (await client.get("/metrics")).text
    assert "bi_submit_batched_jobs_total 30.0" in text
    assert f"bi_submit_batches_total {float(submitter.stats.batches)}" in text
    with db() as conn:
        assert conn.execute("SELECT count(*) AS n FROM analyses").fetchone()["n"] == 30
        assert conn.execute("SELECT count(*) AS n FROM procrastinate_jobs").fetchone()["n"] == 30


async def test_a_failing_batch_leaves_nothing_and_is_retried_one_by_one(app, db, monkeypatch):
    state = app.state.engine
    submitter = Submitter(pool=state.pool, queue=state.queue, settings=state.settings, writers=1)
    submitter.start()
    calls = 0

    async def broken(*_args: Any, **_kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("injected failure after the rows and the queue jobs")

    monkeypatch.setattr(audit, "record_many", broken)
    try:
        results = await asyncio.gather(
            *(submitter.submit(submit.Caller(Principal("u")), request(p)) for p in PRIORITIES)
        )
    finally:
        await submitter.close()
    assert calls == submitter.stats.batches == submitter.stats.fallbacks == 1
    assert submitter.stats.largest == 10
    assert len({r.job_id for r in results}) == 10
    with db() as conn:
        assert conn.execute("SELECT count(*) AS n FROM analyses").fetchone()["n"] == 10
        assert conn.execute("SELECT count(*) AS n FROM procrastinate_jobs").fetchone()["n"] == 10
        assert conn.execute("SELECT count(*) AS n FROM analysis_events").fetchone()["n"] == 10


async def test_a_failing_single_submission_leaves_nothing(client, auth, db, monkeypatch):
    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(audit, "record_many", broken)
    monkeypatch.setattr(audit, "record", broken)
    response = await client.post(f"{API}/analyze", json={"type": "test"}, headers=auth())
    assert response.status_code == 500
    with db() as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM analyses) + (SELECT count(*) FROM analysis_inputs)"
            " + (SELECT count(*) FROM analysis_events) + (SELECT count(*) FROM procrastinate_jobs)"
            " AS n"
        ).fetchone()
    assert counts["n"] == 0


async def test_closing_writes_what_is_waiting(app, db):
    state = app.state.engine
    submitter = Submitter(pool=state.pool, queue=state.queue, settings=state.settings, writers=2)
    submitter.start()
    pending = [
        asyncio.ensure_future(submitter.submit(submit.Caller(Principal("u")), request("normal")))
        for _ in range(5)
    ]
    await asyncio.sleep(0)
    await submitter.close()
    assert len({(await p).job_id for p in pending}) == 5
    # once closed, submissions still work, each on its own
    alone = await submitter.submit(submit.Caller(Principal("u")), request("low"))
    async with state.pool.connection() as conn:
        assert (await analyses.get(conn, alone.job_id)) is not None
