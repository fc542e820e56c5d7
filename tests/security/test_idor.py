"""IDOR: Bob probes every endpoint that names Alice's job or template; each answer is exactly
what a job (or template) that does not exist gets, and nothing of Alice's changes.

Alice's jobs cover the states that matter (completed, running, cancelled), and her template
is probed too. A random UUID is the control for "does not exist"; an admin is the control
that the job is there and readable.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from bi_engine.settings import Settings
from tests.security.conftest import wait_until
from tests.support import figures, jobs
from tests.support.processes import ApiServer, Process
from tests.support.sse import Reading, take_line

pytestmark = [pytest.mark.slow, pytest.mark.acceptance]

API = jobs.API
Headers = dict[str, str]


def _job_probes(job: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, request options) of every job endpoint over HTTP."""
    html = {"headers": {"Accept": "text/html"}}
    return [
        ("GET", f"{API}/jobs/{job}", {}),
        ("GET", f"{API}/status/{job}", {}),
        ("GET", f"{API}/jobs/{job}/result", {}),
        ("GET", f"{API}/results/{job}", {}),
        ("GET", f"{API}/jobs/{job}/report", {}),
        ("GET", f"{API}/jobs/{job}/report", html),
        ("POST", f"{API}/jobs/{job}/cancel", {}),
        ("POST", f"{API}/jobs/{job}/retry", {}),
        ("GET", f"{API}/jobs/{job}/events", {}),
        ("GET", f"{API}/jobs/{job}/events", {"params": {"last_event_id": "1"}}),
    ]


async def _answer(
    http: httpx.AsyncClient, method: str, path: str, headers: Headers, options: dict[str, Any]
) -> tuple[int, str | None]:
    merged = {**headers, **options.get("headers", {})}
    request = http.build_request(method, path, headers=merged, params=options.get("params"))
    response = await http.send(request, stream=True)
    try:
        body = await response.aread() if response.status_code != 200 else b""
    finally:
        await response.aclose()
    code = None
    if body and response.headers.get("content-type", "").startswith("application/json"):
        error = httpx.Response(200, content=body).json().get("error") or {}
        code = error.get("code")
    return response.status_code, code


async def _query_token_stream(http: httpx.AsyncClient, job: str, token: str) -> int:
    url = f"{API}/jobs/{job}/events"
    async with http.stream("GET", url, params={"token": token}) as response:
        return response.status_code


async def _socket(server: ApiServer, job: str, token: str) -> int:
    url = f"ws://127.0.0.1:{server.port}{API}/ws/jobs/{job}?token={token}&last_event_id=0"
    try:
        async with websockets.connect(url, open_timeout=10) as socket:
            await socket.recv()
            return 101
    except websockets.InvalidStatus as exc:
        return int(exc.response.status_code)


@pytest.fixture(scope="module")
def alice_jobs(server: ApiServer, sec_settings: Settings, sec_worker: Process) -> dict[str, str]:
    """Alice's completed, running and cancelled jobs."""
    headers = jobs.auth(sec_settings, "alice")

    def submit(data: dict[str, Any]) -> str:
        response = httpx.post(
            f"{server.url}{API}/analyze", json={"type": "test", "data": data}, headers=headers
        )
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])

    completed, running, cancelled = (
        submit({"sleep_s": 0}),
        submit({"sleep_s": 120}),
        submit({"sleep_s": 120}),
    )
    httpx.post(f"{server.url}{API}/jobs/{cancelled}/cancel", headers=headers)

    def state(job: str) -> str:
        return str(httpx.get(f"{server.url}{API}/jobs/{job}", headers=headers).json()["status"])

    wait_until(lambda: state(completed) == "completed", what="alice's job to complete")
    wait_until(lambda: state(running) == "running", what="alice's job to run")
    wait_until(lambda: state(cancelled) == "cancelled", what="alice's job to be cancelled")
    return {"completed": completed, "running": running, "cancelled": cancelled}


async def test_bob_gets_not_found_for_every_job_endpoint_of_alice(
    http: httpx.AsyncClient,
    server: ApiServer,
    sec_settings: Settings,
    sec_database_url: str,
    alice_jobs: dict[str, str],
    auth: Callable[..., Headers],
) -> None:
    bob, admin = auth("bob"), auth("root", role="admin")
    with jobs.connect(sec_database_url) as conn:
        before = conn.execute(
            "SELECT id, status, attempts, abort_requested_at, last_seq FROM analyses"
            " WHERE user_id = 'alice' ORDER BY id"
        ).fetchall()
    probes = 0
    for state, job in alice_jobs.items():
        missing = str(uuid.uuid4())
        for (method, path, options), (_, missing_path, _) in zip(
            _job_probes(job), _job_probes(missing), strict=True
        ):
            got = await _answer(http, method, path, bob, options)
            control = await _answer(http, method, missing_path, bob, options)
            assert got == control, (state, method, path, got, control)
            assert got[0] == 404, (state, method, path, got)
            probes += 1
        bob_token = jobs.bearer(sec_settings, "bob")
        assert await _query_token_stream(http, job, bob_token) == 404
        assert await _socket(server, job, bob_token) in (403, 404)
        probes += 2
        # the admin control: the job is there
        assert (await http.get(f"{API}/jobs/{job}", headers=admin)).status_code == 200
    with jobs.connect(sec_database_url) as conn:
        after = conn.execute(
            "SELECT id, status, attempts, abort_requested_at, last_seq FROM analyses"
            " WHERE user_id = 'alice' ORDER BY id"
        ).fetchall()
    running = {str(r["id"]): r for r in after}[alice_jobs["running"]]
    unchanged = [{k: v for k, v in r.items() if k != "last_seq"} for r in before]
    assert unchanged == [{k: v for k, v in r.items() if k != "last_seq"} for r in after]
    assert running["abort_requested_at"] is None
    figures.record(
        "security",
        f"IDOR: {probes} probes of Alice's jobs (completed, running, cancelled) by Bob over"
        " HTTP, SSE (bearer and ?token=) and WebSocket: all 404 exactly like a missing job;"
        " nothing of Alice's changed",
    )


async def test_bob_does_not_see_alice_in_lists_feeds_or_by_idempotency_key(
    http: httpx.AsyncClient,
    sec_settings: Settings,
    alice_jobs: dict[str, str],
    auth: Callable[..., Headers],
) -> None:
    bob = auth("bob")
    listed = (await http.get(f"{API}/jobs", params={"limit": 200}, headers=bob)).json()
    assert not set(alice_jobs.values()) & {j["job_id"] for j in listed["jobs"]}
    # a cursor is opaque, but forging one must not open anyone else's rows
    for status in ("completed", "running", "cancelled"):
        page = await http.get(f"{API}/jobs", params={"status": status}, headers=bob)
        assert page.status_code == 200
        assert not set(alice_jobs.values()) & {j["job_id"] for j in page.json()["jobs"]}

    key = f"shared-{uuid.uuid4()}"
    body = {"type": "test", "data": {"sleep_s": 0}}
    first = await http.post(
        f"{API}/analyze", json=body, headers={**auth("alice"), "Idempotency-Key": key}
    )
    second = await http.post(f"{API}/analyze", json=body, headers={**bob, "Idempotency-Key": key})
    assert first.status_code == second.status_code == 202
    assert first.json()["job_id"] != second.json()["job_id"]
    assert "idempotent-replayed" not in second.headers

    # the dashboard feed: Bob's own job arrives to its end, Alice's (submitted first) never
    opened, target = asyncio.Event(), asyncio.get_running_loop().create_future()
    feed = asyncio.create_task(_feed_until(http, bob, opened, target))
    await asyncio.wait_for(opened.wait(), 10)
    alice_job = await jobs.submit(http, sec_settings, "alice", {"sleep_s": 0})
    bob_job = await jobs.submit(http, sec_settings, "bob", {"sleep_s": 0.5})
    target.set_result(str(bob_job["job_id"]))
    feed_jobs = await asyncio.wait_for(feed, 30)
    assert str(bob_job["job_id"]) in feed_jobs
    assert str(alice_job["job_id"]) not in feed_jobs
    assert not set(alice_jobs.values()) & feed_jobs


async def _feed_until(
    http: httpx.AsyncClient,
    headers: Headers,
    opened: asyncio.Event,
    target: asyncio.Future[str],
) -> set[str]:
    """Job ids the feed delivers until the ``target`` job's ``completed`` event."""
    seen: set[str] = set()
    reading = Reading(200)
    fields: dict[str, str] = {}
    async with http.stream("GET", f"{API}/events", headers=headers) as response:
        assert response.status_code == 200
        opened.set()
        async for line in response.aiter_lines():
            if not take_line(line, fields, reading):
                continue
            frame = reading.frames[-1]
            job_id = str(frame.data.get("job_id")) if isinstance(frame.data, dict) else None
            if job_id:
                seen.add(job_id)
            if frame.event == "completed" and target.done() and job_id == target.result():
                return seen
    return seen


async def test_templates_of_alice_are_not_found_for_bob(
    http: httpx.AsyncClient, auth: Callable[..., Headers]
) -> None:
    alice, bob = auth("alice"), auth("bob")
    created = await http.post(
        f"{API}/templates",
        json={"name": f"secret-{uuid.uuid4().hex[:6]}", "question": "What is our margin?"},
        headers=alice,
    )
    assert created.status_code == 201, created.text
    template = str(created.json()["id"])
    missing = str(uuid.uuid4())
    update = {"name": "stolen", "question": "?"}
    for method, options in (("GET", {}), ("PUT", {"json": update}), ("DELETE", {})):
        got = await http.request(method, f"{API}/templates/{template}", headers=bob, **options)
        control = await http.request(method, f"{API}/templates/{missing}", headers=bob, **options)
        assert got.status_code == control.status_code == 404, (method, got.text)
        assert got.json()["error"]["code"] == control.json()["error"]["code"]
    listed = (await http.get(f"{API}/templates", headers=bob)).json()
    assert template not in str(listed)
    custom = {"type": "custom_analysis", "data": {"template_id": template, "metrics": {"a": 1}}}
    refused = await http.post(f"{API}/analyze", json=custom, headers=bob)
    assert refused.status_code == 422, refused.text
    mine = await http.get(f"{API}/templates/{template}", headers=alice)
    assert mine.status_code == 200
    assert "stolen" not in mine.text
