"""Reading and steering jobs over HTTP: status, lists, results, reports, cancel, retry, types."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bi_engine.api import openapi
from bi_engine.domain import jobs, vocabulary
from tests.integration.api.conftest import API, finish, start

pytestmark = pytest.mark.integration

RESULT = {
    "analysis": {"summary": {"headline": "Approval is the bottleneck", "executive_summary": "..."}},
    "report_markdown": "# Report\n\nApproval takes **62%** of the time.\n",
    "team": [
        {"agent": "Senior Business Performance Analyst", "display": "Your AI Team", "tasks": 2}
    ],
    "llm": {
        "provider": "pattern",
        "tried": [],
        "tokens": {"prompt": 0, "completion": 0},
        "cost_eur": 0.0,
    },
}


async def new_job(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> str:
    body.setdefault("type", "test")
    response = await client.post(f"{API}/analyze", json=body, headers=headers)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


async def test_status_document_and_alias(client, auth):
    job_id = await new_job(client, auth(), priority="low", agent_team="data_intelligence_team")
    for path in (f"jobs/{job_id}", f"status/{job_id}"):
        response = await client.get(f"{API}/{path}", headers=auth())
        assert response.status_code == 200
        body = response.json()
        jobs.JobStatus.model_validate(body)
        assert (body["status"], body["priority"], body["progress"], body["position_in_queue"]) == (
            "queued",
            "low",
            0,
            1,
        )
        assert body["agent_team"] == "data_intelligence_team"
        assert body["error"] is None


async def test_failed_job_shows_its_error(client, auth, db):
    job_id = await new_job(client, auth())
    with db() as conn:
        finish(conn, job_id, "failed", error=("llm_unavailable", "every provider failed"))
    body = (await client.get(f"{API}/jobs/{job_id}", headers=auth())).json()
    assert body["status"] == "failed"
    assert body["error"] == {"code": "llm_unavailable", "message": "every provider failed"}
    assert body["finished_at"]
    assert body["started_at"]
    assert body["position_in_queue"] is None


async def test_someone_elses_job_is_404_and_admin_sees_it(client, auth):
    job_id = await new_job(client, auth("alice"))
    for path in (
        f"jobs/{job_id}",
        f"status/{job_id}",
        f"jobs/{job_id}/result",
        f"jobs/{job_id}/report",
    ):
        response = await client.get(f"{API}/{path}", headers=auth("bob"))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "job_not_found"
    for action in ("cancel", "retry"):
        response = await client.post(f"{API}/jobs/{job_id}/{action}", headers=auth("bob"))
        assert response.status_code == 404
    response = await client.get(f"{API}/jobs/{job_id}", headers=auth("root", role="admin"))
    assert response.status_code == 200
    assert response.json()["job_id"] == job_id


async def test_result_is_409_until_completed_then_200(client, auth, db):
    job_id = await new_job(client, auth())
    for path in (f"jobs/{job_id}/result", f"results/{job_id}"):
        response = await client.get(f"{API}/{path}", headers=auth())
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "job_not_finished"
        assert response.json()["error"]["details"]["status"] == "queued"
    with db() as conn:
        start(conn, job_id)
    response = await client.get(f"{API}/jobs/{job_id}/result", headers=auth())
    assert response.json()["error"]["details"]["status"] == "running"
    with db() as conn:
        finish(conn, job_id, result=RESULT, report=RESULT["report_markdown"])
    for path in (f"jobs/{job_id}/result", f"results/{job_id}"):
        response = await client.get(f"{API}/{path}", headers=auth())
        assert response.status_code == 200
        body = response.json()
        jobs.JobResult.model_validate(body)
        assert (body["success"], body["job_id"], body["status"], body["type"]) == (
            True,
            job_id,
            "completed",
            "test",
        )
        assert body["data"] == RESULT


async def test_result_of_a_failed_job_is_409_with_its_error(client, auth, db):
    job_id = await new_job(client, auth())
    with db() as conn:
        finish(conn, job_id, "failed", error=("timeout", "took too long"))
    response = await client.get(f"{API}/jobs/{job_id}/result", headers=auth())
    assert response.status_code == 409
    assert response.json()["error"]["details"] == {
        "status": "failed",
        "error": {"code": "timeout", "message": "took too long"},
    }


async def test_report_as_markdown_or_html(client, auth, db):
    job_id = await new_job(client, auth())
    assert (await client.get(f"{API}/jobs/{job_id}/report", headers=auth())).status_code == 409
    with db() as conn:
        finish(conn, job_id, result=RESULT, report="# Report\n\n<b>raw</b> and **bold**\n")
    markdown = await client.get(f"{API}/jobs/{job_id}/report", headers=auth())
    assert markdown.status_code == 200
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert markdown.text == "# Report\n\n<b>raw</b> and **bold**\n"
    page = await client.get(f"{API}/jobs/{job_id}/report", headers=auth(Accept="text/html"))
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>Report</h1>" in page.text
    assert "<strong>bold</strong>" in page.text
    assert "<b>raw</b>" not in page.text


async def test_report_falls_back_to_the_result_document(client, auth, db):
    job_id = await new_job(client, auth())
    with db() as conn:
        finish(conn, job_id, result=RESULT)
    response = await client.get(f"{API}/jobs/{job_id}/report", headers=auth())
    assert response.text == RESULT["report_markdown"]


async def test_cancel_a_queued_job_at_once(client, auth, db):
    job_id = await new_job(client, auth(), callback_url="http://backend-dev:3001/hooks/bi")
    response = await client.post(f"{API}/jobs/{job_id}/cancel", headers=auth())
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["finished_at"] is not None) == ("cancelled", True)
    with db() as conn:
        row = conn.execute(
            "SELECT p.status FROM analyses a JOIN procrastinate_jobs p"
            " ON p.id = a.procrastinate_job_id WHERE a.id = %s",
            (job_id,),
        ).fetchone()
        events = conn.execute(
            "SELECT seq, kind, data FROM analysis_events WHERE job_id = %s ORDER BY seq", (job_id,)
        ).fetchall()
        callbacks = conn.execute(
            "SELECT args FROM procrastinate_jobs WHERE task_name = 'bi.deliver_callback'"
        ).fetchall()
        audit = conn.execute(
            "SELECT action, result FROM audit_log WHERE job_id = %s ORDER BY id", (job_id,)
        ).fetchall()
    assert row["status"] == "cancelled"
    assert [(e["seq"], e["kind"]) for e in events] == [(1, "status"), (2, "cancelled")]
    assert events[1]["data"]["status"] == "cancelled"
    assert [c["args"]["event"] for c in callbacks] == ["cancelled"]
    assert audit[-1] == {"action": "analysis_cancelled", "result": "cancelled"}
    again = await client.post(f"{API}/jobs/{job_id}/cancel", headers=auth())
    assert again.status_code == 409
    assert again.json()["error"]["details"] == {"status": "cancelled"}


async def test_cancel_a_running_job_requests_an_abort(client, auth, db):
    job_id = await new_job(client, auth())
    with db() as conn:
        start(conn, job_id)
    response = await client.post(f"{API}/jobs/{job_id}/cancel", headers=auth())
    assert response.status_code == 202
    assert response.headers["location"] == f"{API}/jobs/{job_id}"
    assert (response.json()["status"], response.json()["abort_requested"]) == ("running", True)
    with db() as conn:
        row = conn.execute(
            "SELECT a.abort_requested_at, p.abort_requested, p.status FROM analyses a"
            " JOIN procrastinate_jobs p ON p.id = a.procrastinate_job_id WHERE a.id = %s",
            (job_id,),
        ).fetchone()
    assert row["abort_requested_at"] is not None
    assert (row["abort_requested"], row["status"]) == (True, "doing")


async def test_cancel_a_job_a_worker_just_claimed_requests_an_abort(client, auth, db):
    """procrastinate already handed it out while the row still says queued."""
    job_id = await new_job(client, auth())
    with db() as conn:
        conn.execute(
            "UPDATE procrastinate_jobs SET status = 'doing' WHERE id ="
            " (SELECT procrastinate_job_id FROM analyses WHERE id = %s)",
            (job_id,),
        )
    response = await client.post(f"{API}/jobs/{job_id}/cancel", headers=auth())
    assert response.status_code == 202
    assert response.json()["abort_requested"] is True


async def test_cancel_a_completed_job_is_409(client, auth, db):
    job_id = await new_job(client, auth())
    with db() as conn:
        finish(conn, job_id, result=RESULT)
    response = await client.post(f"{API}/jobs/{job_id}/cancel", headers=auth())
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_state"


@pytest.mark.parametrize("ending", ["failed", "cancelled"])
async def test_retry_queues_again(client, auth, db, ending):
    job_id = await new_job(client, auth(), priority="high")
    with db() as conn:
        if ending == "failed":
            finish(conn, job_id, "failed", error=("timeout", "took too long"))
        old = conn.execute(
            "SELECT procrastinate_job_id FROM analyses WHERE id = %s", (job_id,)
        ).fetchone()
    if ending == "cancelled":
        await client.post(f"{API}/jobs/{job_id}/cancel", headers=auth())
    response = await client.post(f"{API}/jobs/{job_id}/retry", headers=auth())
    assert response.status_code == 202
    body = response.json()
    jobs.JobAccepted.model_validate(body)
    assert (body["job_id"], body["status"], body["position_in_queue"]) == (job_id, "queued", 1)
    assert response.headers["location"] == f"{API}/jobs/{job_id}"
    with db() as conn:
        row = conn.execute("SELECT * FROM analyses WHERE id = %s", (job_id,)).fetchone()
        queued = conn.execute(
            "SELECT * FROM procrastinate_jobs WHERE id = %s", (row["procrastinate_job_id"],)
        ).fetchone()
        last = conn.execute(
            "SELECT kind, data FROM analysis_events WHERE job_id = %s ORDER BY seq DESC LIMIT 1",
            (job_id,),
        ).fetchone()
    assert row["procrastinate_job_id"] != old["procrastinate_job_id"]
    assert (row["status"], row["error_code"], row["finished_at"], row["progress"]) == (
        "queued",
        None,
        None,
        0,
    )
    assert row["queued_at"] > row["created_at"]
    assert (queued["status"], queued["priority"], queued["args"]) == (
        "todo",
        20,
        {"job_id": job_id},
    )
    assert last == {"kind": "status", "data": {"status": "queued", "retry": True}}
    status = (await client.get(f"{API}/jobs/{job_id}", headers=auth())).json()
    assert status["error"] is None


@pytest.mark.parametrize("state", ["queued", "running", "completed"])
async def test_retry_in_the_wrong_state_is_409(client, auth, db, state):
    job_id = await new_job(client, auth())
    with db() as conn:
        if state == "running":
            start(conn, job_id)
        elif state == "completed":
            finish(conn, job_id, result=RESULT)
    response = await client.post(f"{API}/jobs/{job_id}/retry", headers=auth())
    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"status": state}


async def test_list_is_scoped_filtered_and_paginated(client, auth, db):
    mine = [await new_job(client, auth("alice")) for _ in range(5)]
    mine.append(
        await new_job(client, auth("alice"), type="custom_analysis", data={"question": "?"})
    )
    theirs = await new_job(client, auth("bob"))
    with db() as conn:
        finish(conn, mine[0], result=RESULT)
    listed = (await client.get(f"{API}/jobs", headers=auth("alice"))).json()
    jobs.JobList.model_validate(listed)
    assert [j["job_id"] for j in listed["jobs"]] == mine[::-1]
    assert listed["next_cursor"] is None
    admin = (await client.get(f"{API}/jobs", headers=auth("root", role="admin"))).json()
    assert theirs in {j["job_id"] for j in admin["jobs"]}
    assert len(admin["jobs"]) == 7

    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{API}/jobs", params=params, headers=auth("alice"))).json()
        pages.append([j["job_id"] for j in page["jobs"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [mine[5:3:-1], mine[3:1:-1], mine[1::-1]]

    completed = (await client.get(f"{API}/jobs?status=completed", headers=auth("alice"))).json()
    assert [j["job_id"] for j in completed["jobs"]] == [mine[0]]
    both = (
        await client.get(
            f"{API}/jobs?status=completed,queued&type=custom_analysis", headers=auth("alice")
        )
    ).json()
    assert [j["job_id"] for j in both["jobs"]] == [mine[5]]
    repeated = await client.get(f"{API}/jobs?type=test&type=custom_analysis", headers=auth("alice"))
    assert len(repeated.json()["jobs"]) == 6


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("status=done", ["query", "status"]),
        ("type=report", ["query", "type"]),
        ("limit=0", ["query", "limit"]),
        ("limit=201", ["query", "limit"]),
        ("limit=ten", ["query", "limit"]),
        ("cursor=garbage", ["query", "cursor"]),
        ("cursor=WzEsMl0", ["query", "cursor"]),
    ],
)
async def test_bad_list_filters_are_422(client, auth, query, loc):
    response = await client.get(f"{API}/jobs?{query}", headers=auth())
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == loc


async def test_types_has_exactly_the_contract_shape(client, auth):
    response = await client.get(f"{API}/types", headers=auth())
    assert response.status_code == 200
    body = response.json()
    openapi.TypesDocument.model_validate(body)
    assert set(body) == {"types", "teams"}
    assert [t["type"] for t in body["types"]] == [t.type for t in vocabulary.ANALYSIS_TYPES]
    assert all(set(t) == {"type", "label", "description", "team"} for t in body["types"])
    assert [t["id"] for t in body["teams"]] == [
        "business_analyst_team",
        "process_optimization_team",
        "data_intelligence_team",
        "report_generation_team",
    ]
    assert all(set(a) == {"role", "display"} for t in body["teams"] for a in t["agents"])
    assert body["teams"][0]["agents"][0]["role"] == "Senior Business Performance Analyst"
