"""The WebSocket twin of the SSE stream: same events, same resume rule, closed after the end."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bi_engine.settings import Settings
from tests.acceptance.live.conftest import API, Log, bearer, submit
from tests.support.processes import ApiServer, Process

pytestmark = [pytest.mark.acceptance]


def _ws_url(server: ApiServer, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


async def _receive_all(ws: ClientConnection, timeout: float = 20) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def receive() -> None:
        try:
            while True:
                messages.append(orjson.loads(await ws.recv()))
        except ConnectionClosed:
            return

    await asyncio.wait_for(receive(), timeout)
    return messages


async def test_a_worker_job_over_a_websocket_from_the_first_seq_to_the_terminal_event(
    server: ApiServer, worker: Process, live_settings: Settings
) -> None:
    job = await submit(server.url, live_settings, "alice", {"sleep_s": 1})
    async with connect(_ws_url(server, job["websocket_url"])) as ws:
        await ws.send(orjson.dumps({"last_seq": 0}).decode())
        messages = await _receive_all(ws)
        assert ws.close_code == 1000
    seqs = [m["seq"] for m in messages]
    assert seqs == list(range(1, len(seqs) + 1))
    assert messages[-1]["kind"] == "completed"
    assert {m["job_id"] for m in messages} == {job["job_id"]}


async def test_a_websocket_resumes_after_the_seq_the_client_names(
    server: ApiServer, event_log: Log, live_settings: Settings
) -> None:
    job = await event_log.new_job("alice")
    await event_log.progress(job, 10, 20, 30)
    token = bearer(live_settings, "alice")
    async with connect(_ws_url(server, f"{API}/ws/jobs/{job}?token={token}")) as ws:
        await ws.send('{"last_seq": 2}')
        first = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert first["seq"] == 3
        await event_log.progress(job, 40)
        await event_log.finish(job)
        rest = await _receive_all(ws)
    assert [m["seq"] for m in rest] == [4, 5]
    query = f"{API}/ws/jobs/{job}?token={token}&last_event_id=4"
    async with connect(_ws_url(server, query)) as ws:  # no first message needed
        assert [m["seq"] for m in await _receive_all(ws)] == [5]
        assert ws.close_code == 1000


async def test_someone_elses_job_refuses_the_websocket_with_404(
    server: ApiServer, event_log: Log, live_settings: Settings
) -> None:
    job = await event_log.new_job("bob")
    token = bearer(live_settings, "alice")
    with pytest.raises(InvalidStatus) as refused:
        async with connect(_ws_url(server, f"{API}/ws/jobs/{job}?token={token}")):
            pass
    assert refused.value.response.status_code == 404
    assert b"job_not_found" in refused.value.response.body
    with pytest.raises(InvalidStatus) as unauthenticated:
        async with connect(_ws_url(server, f"{API}/ws/jobs/{job}")):
            pass
    assert unauthenticated.value.response.status_code == 401


async def test_a_first_message_without_a_valid_last_seq_closes_the_socket(
    server: ApiServer, event_log: Log, live_settings: Settings
) -> None:
    job = await event_log.new_job("alice")
    await event_log.progress(job, 10)
    token = bearer(live_settings, "alice")
    for bad in ('{"last_seq": -1}', '{"last_seq": 9}', "hello", '{"last_seq": "x"}', "[]"):
        async with connect(_ws_url(server, f"{API}/ws/jobs/{job}?token={token}")) as ws:
            await ws.send(bad)
            assert await _receive_all(ws, timeout=5) == []
            assert ws.close_code == 4400, bad
