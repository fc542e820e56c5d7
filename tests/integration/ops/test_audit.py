"""The audit log (CONTRACT section 10): a row for every action, refusals included."""

from __future__ import annotations

import asyncio

import pytest

from bi_engine.auth import stream
from bi_engine.auth.principal import Principal
from bi_engine.db import audit
from tests import pg
from tests.integration.ops.conftest import (
    API,
    PEER,
    audit_rows,
    block,
    finish,
    flush_audit,
    running,
)

pytestmark = pytest.mark.integration


async def test_every_action_leaves_one_row_with_ip_and_request_id(served, auth, db, settings):
    app, client = served
    submitted = await client.post(
        f"{API}/analyze", json={"type": "test"}, headers=auth(**{"X-Request-ID": "submit-1"})
    )
    job = submitted.json()["job_id"]
    status = await client.get(f"{API}/jobs/{job}", headers=auth(**{"X-Request-ID": "status-1"}))
    assert status.status_code == 200
    assert (await client.get(f"{API}/results/{job}", headers=auth())).status_code == 409
    assert (await client.get(f"{API}/jobs", headers=auth())).status_code == 200
    assert (await client.post(f"{API}/jobs/{job}/cancel", headers=auth())).status_code == 200
    assert (await client.post(f"{API}/jobs/{job}/retry", headers=auth())).status_code == 202
    with db() as conn:
        finish(conn, job)
    assert (await client.get(f"{API}/jobs/{job}/report", headers=auth())).status_code == 200
    token = stream.mint_stream_token(settings, Principal("alice"), job)
    events = await client.get(f"{API}/jobs/{job}/events", params={"token": token})
    assert events.status_code == 200
    assert "event: status" in events.text
    assert (await client.get(f"{API}/jobs/{job}", headers=auth("bob"))).status_code == 404
    await flush_audit(app)

    with db() as conn:
        rows = audit_rows(conn)
    seen = sorted((r["action"], r["result"], r["user_id"]) for r in rows)
    assert seen == sorted(
        [
            ("analysis_requested", "accepted", "alice"),
            ("analysis_status_read", "ok", "alice"),
            ("analysis_result_read", "conflict", "alice"),
            ("analyses_listed", "ok", "alice"),
            ("analysis_cancelled", "cancelled", "alice"),
            ("analysis_retried", "queued", "alice"),
            ("analysis_report_read", "ok", "alice"),
            ("stream_opened", "ok", "alice"),
            ("analysis_status_read", "not_found", "bob"),
        ]
    )
    assert {r["ip"] for r in rows} == {PEER}
    by_request = {r["request_id"]: r for r in rows}
    assert by_request["submit-1"]["action"] == "analysis_requested"
    assert by_request["status-1"]["action"] == "analysis_status_read"
    assert all(r["request_id"] for r in rows if r["action"] != "stream_opened")
    reads = [r for r in rows if r["action"].endswith("_read")]
    assert all(str(r["job_id"]) == job for r in reads)
    assert {r["analysis_type"] for r in reads if r["user_id"] == "alice"} == {"test"}
    (foreign,) = [r for r in rows if r["user_id"] == "bob"]
    assert foreign["details"] == {"reason": "job_not_found", "status": 404}
    opened = next(r for r in rows if r["action"] == "stream_opened")
    assert opened["details"] == {"stream": "job"}


async def test_authentication_failures_are_denied_rows_without_a_user(served, db, settings):
    app, client = served
    assert (await client.get(f"{API}/jobs")).status_code == 401
    bad = {"Authorization": "Bearer not.a.jwt"}
    denied = await client.post(f"{API}/analyze", json={"type": "test"}, headers=bad)
    assert denied.status_code == 401
    assert (await client.get(f"{API}/events", params={"token": "forged"})).status_code == 401
    assert (await client.get(f"{API}/templates", headers=bad)).status_code == 401
    await flush_audit(app)
    with db() as conn:
        rows = audit_rows(conn)
    assert [(r["action"], r["result"], r["user_id"]) for r in rows] == [
        ("analyses_listed", "denied", None),
        ("analysis_requested", "denied", None),
        ("stream_opened", "denied", None),
        ("templates_listed", "denied", None),
    ]
    assert [r["details"]["reason"] for r in rows] == [
        "unauthorized",
        "invalid_token",
        "invalid_token",
        "invalid_token",
    ]
    assert all(r["details"]["status"] == 401 and r["ip"] == PEER for r in rows)


async def test_rate_limited_requests_are_audited_and_do_not_count(served, auth, db):
    app, client = served
    answers = [
        (await client.post(f"{API}/analyze", json={"type": "test"}, headers=auth())).status_code
        for _ in range(12)
    ]
    assert answers == [202] * 10 + [429] * 2
    await flush_audit(app)
    with db() as conn:
        refused = audit_rows(conn, result="rate_limited")
        hits = conn.execute("SELECT count(*) AS n FROM rate_limit_hits").fetchone()
    assert [(r["action"], r["user_id"]) for r in refused] == [("analysis_requested", "alice")] * 2
    assert refused[0]["details"] == {"reason": "rate_limited", "status": 429}
    assert hits == {"n": 10}


async def test_shutdown_flushes_waiting_rows(settings, auth, db):
    async with running(settings) as (app, client):
        await client.get(f"{API}/jobs", headers=auth())
        writer = app.state.engine.audit
        for n in range(1200):  # still waiting when the lifespan ends
            writer.add(audit.Entry(user_id=f"u{n}", action="analyses_listed", result="ok"))
    assert writer.written == 1201
    with db() as conn:
        assert len(audit_rows(conn, action="analyses_listed")) == 1201


async def test_rows_wait_while_the_database_is_away(settings, database_url, pg_admin_url, db):
    async with running(settings) as (app, _client):
        writer = app.state.engine.audit
        writer.retry_s = 0.2
        name = pg.dbname(database_url)
        block(pg_admin_url, name, allow=False)
        try:
            writer.add(audit.Entry(user_id="u1", action="analyses_listed", result="ok"))
            await asyncio.sleep(1.0)
            assert writer.written == 0
        finally:
            block(pg_admin_url, name, allow=True)
        await flush_audit(app)
    with db() as conn:
        assert len(audit_rows(conn, user_id="u1")) == 1
