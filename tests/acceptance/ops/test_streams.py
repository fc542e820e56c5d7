"""Opening a live stream (SSE or WebSocket) is audited, refusals included."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bi_engine.constants import API_PREFIX as API
from tests.acceptance.ops.conftest import auth

pytestmark = [pytest.mark.acceptance]


async def test_stream_opens_and_refusals_are_audited(start, settings, database_url):
    server = start("serve")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        accepted = (
            await http.post(f"{API}/analyze", json={"type": "test"}, headers=auth(settings))
        ).json()
        job = accepted["job_id"]
        with psycopg.connect(database_url, options="-c search_path=bi,public") as conn:
            conn.execute(
                "UPDATE analyses SET status = 'cancelled', finished_at = now() WHERE id = %s",
                (job,),
            )
            conn.execute('SELECT append_events(%s, \'[{"kind": "cancelled"}]\')', (job,))
        sse = await http.get(accepted["events_url"])
        assert sse.status_code == 200
        assert "event: cancelled" in sse.text
        refused = await http.get(f"{API}/jobs/{job}/events", params={"token": "forged"})
        assert refused.status_code == 401
    ws_base = server.url.replace("http://", "ws://")
    async with connect(f"{ws_base}{accepted['websocket_url']}&last_event_id=0") as socket:
        messages = []
        try:
            while True:
                messages.append(await asyncio.wait_for(socket.recv(), 5))
        except ConnectionClosed:
            pass
    assert messages
    with pytest.raises(InvalidStatus):
        async with connect(f"{ws_base}{API}/ws/jobs/{job}?token=forged"):
            pass
    rows = await stream_rows(database_url, expected=4)
    assert [(r["user_id"], r["result"], r["details"].get("stream")) for r in rows] == [
        ("alice", "ok", "job"),
        (None, "denied", "job"),
        ("alice", "ok", "websocket"),
        (None, "denied", "websocket"),
    ]
    assert {r["job_id"] for r in rows} == {job}
    assert {r["ip"] for r in rows} == {"127.0.0.1"}


async def stream_rows(database_url: str, *, expected: int) -> list[dict[str, Any]]:
    """The stream_opened rows, once the audit writer (it batches) has written them all."""
    for _ in range(100):
        with psycopg.connect(
            database_url, row_factory=dict_row, options="-c search_path=bi,public"
        ) as conn:
            rows = conn.execute(
                "SELECT user_id, result, details, job_id::text AS job_id, ip FROM audit_log"
                " WHERE action = 'stream_opened' ORDER BY id"
            ).fetchall()
        if len(rows) >= expected:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(rows)} stream rows were written")
