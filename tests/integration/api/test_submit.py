"""POST /analyze against real Postgres: one transaction, idempotency, queue positions, waiting."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from bi_engine.db import audit
from bi_engine.domain import jobs
from tests.integration.api.conftest import API, finish

pytestmark = pytest.mark.integration

EVENTS = {"events": [{"case_id": "c1", "activity": "Check", "start": "2026-10-01T08:00:00Z"}]}


async def submit(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    body.setdefault("type", "test")
    return await client.post(f"{API}/analyze", json=body, headers=headers)


async def test_submission_writes_job_input_queue_job_event_and_audit_row(client, auth, db):
    response = await submit(
        client,
        auth("alice", **{"X-Request-ID": "req-123"}),
        type="process_analysis",
        data=EVENTS,
        priority="high",
        sensitivity="confidential",
        agent_team="process_optimization_team",
        context="Monthly review",
        callback_url="http://backend-dev:3001/hooks/bi",
        time_period="2026-10",
        metrics_focus=["cycle_time"],
    )
    assert response.status_code == 202
    body = response.json()
    jobs.JobAccepted.model_validate(body)
    job_id = body["job_id"]
    assert response.headers["location"] == f"{API}/jobs/{job_id}" == body["status_url"]
    assert body["result_url"] == f"{API}/jobs/{job_id}/result"
    assert body["events_url"].startswith(f"{API}/jobs/{job_id}/events?token=")
    assert body["websocket_url"].startswith(f"{API}/ws/jobs/{job_id}?token=")
    assert (body["status"], body["position_in_queue"], body["estimated_start"]) == (
        "queued",
        1,
        None,
    )
    with db() as conn:
        row = conn.execute("SELECT * FROM analyses WHERE id = %s", (job_id,)).fetchone()
        data = conn.execute(
            "SELECT data FROM analysis_inputs WHERE job_id = %s", (job_id,)
        ).fetchone()
        queued = conn.execute(
            "SELECT * FROM procrastinate_jobs WHERE id = %s", (row["procrastinate_job_id"],)
        ).fetchone()
        events = conn.execute(
            "SELECT seq, kind, data FROM analysis_events WHERE job_id = %s", (job_id,)
        ).fetchall()
        audits = conn.execute("SELECT * FROM audit_log WHERE job_id = %s", (job_id,)).fetchall()
    assert (row["user_id"], row["user_email"], row["type"], row["priority"]) == (
        "alice",
        "alice@x.test",
        "process_analysis",
        "high",
    )
    assert (row["sensitivity"], row["agent_team"], row["status"]) == (
        "confidential",
        "process_optimization_team",
        "queued",
    )
    assert row["options"] == {
        "context": "Monthly review",
        "time_period": "2026-10",
        "metrics_focus": ["cycle_time"],
    }
    assert row["callback_url"] == "http://backend-dev:3001/hooks/bi"
    assert data["data"] == EVENTS
    assert (queued["task_name"], queued["queue_name"], queued["priority"], queued["status"]) == (
        "bi.run_analysis",
        "analyses",
        20,
        "todo",
    )
    assert queued["args"] == {"job_id": job_id}
    assert events == [{"seq": 1, "kind": "status", "data": {"status": "queued"}}]
    (entry,) = audits
    assert (entry["user_id"], entry["action"], entry["result"], entry["analysis_type"]) == (
        "alice",
        "analysis_requested",
        "accepted",
        "process_analysis",
    )
    assert (entry["request_id"], entry["ip"]) == ("req-123", "127.0.0.1")
    assert entry["details"]["sensitivity"] == "confidential"
    assert response.headers["x-request-id"] == "req-123"


@pytest.mark.parametrize(("priority", "number"), [("high", 20), ("normal", 10), ("low", 0)])
async def test_priorities_map_to_procrastinate(client, auth, db, priority, number):
    response = await submit(client, auth(), priority=priority)
    with db() as conn:
        row = conn.execute(
            "SELECT p.priority FROM analyses a JOIN procrastinate_jobs p"
            " ON p.id = a.procrastinate_job_id WHERE a.id = %s",
            (response.json()["job_id"],),
        ).fetchone()
    assert row["priority"] == number


async def test_n8n_alias_accepts_analysis_type_and_agent_team(client, auth, db):
    response = await client.post(
        "/api/analyze",
        json={"analysis_type": "test", "agent_team": "report_generation_team", "data": "{}"},
        headers=auth(),
    )
    assert response.status_code == 202
    with db() as conn:
        row = conn.execute(
            "SELECT type, agent_team FROM analyses WHERE id = %s", (response.json()["job_id"],)
        ).fetchone()
    assert row == {"type": "test", "agent_team": "report_generation_team"}


async def test_queue_positions_follow_priority_then_age(client, auth):
    order = ["low", "normal", "high", "normal", "high", "low"]
    positions = []
    ids = []
    for priority in order:
        body = (await submit(client, auth(), priority=priority)).json()
        positions.append(body["position_in_queue"])
        ids.append(body["job_id"])
    # Each new job starts after every older job of its priority or higher.
    assert positions == [1, 1, 1, 3, 2, 6]
    now = [
        (await client.get(f"{API}/jobs/{i}", headers=auth())).json()["position_in_queue"]
        for i in ids
    ]
    # high(2), high(4), normal(1), normal(3), low(0), low(5)
    assert now == [5, 3, 1, 4, 2, 6]


async def test_estimated_start_uses_live_workers_and_recent_run_times(client, auth, db):
    done = (await submit(client, auth())).json()["job_id"]
    with db() as conn:
        finish(conn, done, result={"analysis": {}})
        conn.execute(
            "UPDATE analyses SET created_at = now() - interval '2 minutes',"
            " started_at = finished_at - interval '40 seconds' WHERE id = %s",
            (done,),
        )
        conn.execute("INSERT INTO procrastinate_workers DEFAULT VALUES")
        conn.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour')"
        )
    running = (await submit(client, auth())).json()["job_id"]
    with db() as conn:
        conn.execute(
            "UPDATE analyses SET status = 'running', started_at = now() WHERE id = %s", (running,)
        )
    # one live worker x BI_WORKER_CONCURRENCY (4): 3 free slots, then waves of 40 s
    bodies = [(await submit(client, auth())).json() for _ in range(5)]
    starts = [body["estimated_start"] for body in bodies]
    created = [body["created_at"] for body in bodies]
    from datetime import datetime

    def seconds(i: int) -> float:
        return (
            datetime.fromisoformat(starts[i]) - datetime.fromisoformat(created[i])
        ).total_seconds()

    assert [round(seconds(i) / 40) for i in range(5)] == [0, 0, 0, 1, 1]


async def test_idempotency_key_returns_the_original_job(client, auth, db):
    headers = auth("alice", **{"Idempotency-Key": "order-42"})
    first = await submit(client, headers, data={"sleep_s": 1})
    again = await submit(client, headers, data={"sleep_s": 2})
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["job_id"] == first.json()["job_id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    other_user = await submit(client, auth("bob", **{"Idempotency-Key": "order-42"}))
    assert other_user.json()["job_id"] != first.json()["job_id"]
    with db() as conn:
        count = conn.execute("SELECT count(*) AS n FROM analyses").fetchone()["n"]
        queued = conn.execute("SELECT count(*) AS n FROM procrastinate_jobs").fetchone()["n"]
        replays = conn.execute(
            "SELECT count(*) AS n FROM audit_log WHERE result = 'idempotent_replay'"
        ).fetchone()["n"]
    assert (count, queued, replays) == (2, 2, 1)


async def test_idempotent_replay_of_a_finished_job_answers_200_with_its_result(client, auth, db):
    headers = auth("alice", **{"Idempotency-Key": "k-done"})
    job_id = (await submit(client, headers)).json()["job_id"]
    with db() as conn:
        finish(conn, job_id, result={"analysis": {"kpis": []}})
    again = await submit(client, headers)
    assert again.status_code == 200
    assert again.json()["data"] == {"analysis": {"kpis": []}}


async def test_an_expired_idempotency_key_starts_a_new_job(client, auth, db):
    headers = auth("alice", **{"Idempotency-Key": "old"})
    first = (await submit(client, headers)).json()["job_id"]
    with db() as conn:
        conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    second = (await submit(client, headers)).json()["job_id"]
    assert second != first
    with db() as conn:
        assert conn.execute("SELECT job_id FROM idempotency_keys").fetchone()[
            "job_id"
        ] == uuid.UUID(second)


async def test_concurrent_duplicates_create_one_job(client, auth, db):
    headers = auth("alice", **{"Idempotency-Key": "burst"})
    responses = await asyncio.gather(*(submit(client, headers) for _ in range(12)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["job_id"] for r in responses}) == 1
    with db() as conn:
        assert conn.execute("SELECT count(*) AS n FROM analyses").fetchone()["n"] == 1
        assert conn.execute("SELECT count(*) AS n FROM procrastinate_jobs").fetchone()["n"] == 1


@pytest.mark.parametrize("key", ["", "a" * 256, "has space", "caf\u00e9"])
async def test_bad_idempotency_keys_are_422(client, auth, key):
    headers = auth()
    headers["Idempotency-Key"] = key
    response = await client.post(
        f"{API}/analyze", json={"type": "test"}, headers={k: v.encode() for k, v in headers.items()}
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_a_failure_between_the_row_and_the_commit_leaves_nothing(
    client, auth, db, monkeypatch
):
    """Injected after the job row, its input, its key and the queued procrastinate job."""

    async def broken_audit(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(audit, "record", broken_audit)
    response = await submit(
        client, auth(**{"Idempotency-Key": "k"}), type="process_analysis", data=EVENTS
    )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    with db() as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM analyses) AS analyses,"
            " (SELECT count(*) FROM analysis_inputs) AS inputs,"
            " (SELECT count(*) FROM analysis_events) AS events,"
            " (SELECT count(*) FROM idempotency_keys) AS keys,"
            " (SELECT count(*) FROM procrastinate_jobs) AS queued"
        ).fetchone()
    assert counts == {"analyses": 0, "inputs": 0, "events": 0, "keys": 0, "queued": 0}


async def test_a_failing_defer_leaves_no_row(client, auth, db, monkeypatch, app: Starlette):
    """The row is written after the defer in the same transaction: a defer error rolls back."""
    queue = app.state.engine.queue
    original = queue.configure_task

    def misconfigured(name: str, **options: Any) -> Any:
        return original(name, **{**options, "priority": 2**40})  # out of int range: SQL error

    monkeypatch.setattr(queue, "configure_task", misconfigured)
    response = await submit(client, auth())
    assert response.status_code == 500
    with db() as conn:
        assert conn.execute("SELECT count(*) AS n FROM analyses").fetchone()["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM procrastinate_jobs").fetchone()["n"] == 0


async def test_prefer_wait_answers_200_with_the_result_when_it_ends_in_time(client, auth, db):
    async def worker() -> None:
        for _ in range(100):
            await asyncio.sleep(0.05)
            with db() as conn:
                row = conn.execute("SELECT id FROM analyses").fetchone()
                if row:
                    finish(conn, row["id"], result={"analysis": {"summary": {"headline": "ok"}}})
                    return

    task = asyncio.create_task(worker())
    response = await submit(client, auth(Prefer="wait=10"))
    await task
    assert response.status_code == 200
    assert response.headers["preference-applied"] == "wait=10"
    assert response.headers["location"].endswith(response.json()["job_id"])
    body = response.json()
    jobs.JobResult.model_validate(body)
    assert body["data"]["analysis"]["summary"]["headline"] == "ok"


async def test_prefer_wait_reports_a_failure_that_happens_in_time(client, auth, db):
    async def worker() -> None:
        for _ in range(100):
            await asyncio.sleep(0.05)
            with db() as conn:
                row = conn.execute("SELECT id FROM analyses").fetchone()
                if row:
                    finish(conn, row["id"], "failed", error=("invalid_data", "bad rows"))
                    return

    task = asyncio.create_task(worker())
    response = await submit(client, auth(Prefer="wait=10"))
    await task
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert response.json()["error"] == {"code": "invalid_data", "message": "bad rows"}


async def test_prefer_wait_times_out_with_the_usual_202(client, auth):
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await submit(client, auth(Prefer="wait=1"))
    assert 0.9 <= loop.time() - started < 5
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert response.headers["location"] == response.json()["status_url"]


async def test_unparseable_prefer_is_ignored(client, auth):
    response = await submit(client, auth(Prefer="wait=soon"))
    assert response.status_code == 202
    assert "preference-applied" not in response.headers
