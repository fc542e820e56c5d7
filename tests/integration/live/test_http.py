"""The app on a real uvicorn in this process, so the hub's internals can be checked directly."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bi_engine.api.app import create_app
from bi_engine.api.endpoints.events import LIVE_KEY
from bi_engine.auth import tokens
from bi_engine.constants import API_PREFIX
from bi_engine.live.service import Live
from bi_engine.settings import Settings
from tests.integration.live.conftest import Writer

pytestmark = pytest.mark.integration


@dataclass
class Running:
    url: str
    live: Live
    token: str

    @property
    def hub_count(self) -> int:
        return self.live.hub.subscriber_count


@pytest.fixture
async def running(settings: Settings) -> AsyncIterator[Running]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http="httptools", log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    token = tokens.mint_user_token(settings, user_id="u1")
    try:
        yield Running(f"http://127.0.0.1:{port}", app.state.engine.extras[LIVE_KEY], token)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def _until(predicate: object, timeout: float = 5) -> None:
    async def poll() -> None:
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def _stream_tasks() -> list[asyncio.Task[object]]:
    """Tasks serving a request (uvicorn's ``run_asgi``) or watching for a disconnect."""
    names = ("run_asgi", "_until_disconnect", "_finish")
    return [task for task in asyncio.all_tasks() if any(n in repr(task) for n in names)]


async def _open_stream(running: Running, job: str) -> tuple[asyncio.StreamReader, object]:
    host, port = running.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    path = f"{API_PREFIX}/jobs/{job}/events?token={running.token}"
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"retry: 2000\n\n"), 5)
    assert head.startswith(b"HTTP/1.1 200")
    return reader, writer


async def test_disconnected_clients_leave_no_subscriber_and_no_task(
    running: Running, writer: Writer
) -> None:
    job = await writer.new_job("u1")
    clients = [await _open_stream(running, job) for _ in range(20)]
    assert running.hub_count == 20
    assert len(_stream_tasks()) >= 40  # per stream: the request task and its watcher
    for _, client in clients:
        client.close()  # type: ignore[attr-defined]
    await _until(lambda: running.hub_count == 0)
    await _until(lambda: not _stream_tasks())
    assert running.live.hub.streams_of("u1") == 0


async def test_idle_streams_get_the_heartbeat_comment(running: Running, writer: Writer) -> None:
    job = await writer.new_job("u1")
    reader, client = await _open_stream(running, job)
    sub = next(iter(running.live.hub._by_job[job]))
    try:
        await _until(lambda: sub.parked)  # replayed the (empty) log; now idle
        running.live.keepalive.ping_all()
        assert await asyncio.wait_for(reader.readuntil(b": ping\n\n"), 5)
        await writer.progress(job, 50)
        chunk = await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)
        assert b"id: 1\nevent: progress\n" in chunk
    finally:
        client.close()  # type: ignore[attr-defined]


async def test_a_stalled_client_falls_back_to_its_bounded_mailbox_and_the_log(
    running: Running, writer: Writer
) -> None:
    job = await writer.new_job("u1")
    stalled_reader, stalled = await _open_stream(running, job)
    stalled.transport.pause_reading()  # type: ignore[attr-defined]
    sub = next(iter(running.live.hub._by_job[job]))
    async with httpx.AsyncClient(base_url=running.url, timeout=20) as http:
        url = f"{API_PREFIX}/jobs/{job}/events?token={running.token}"

        async def follow() -> list[int]:
            ids = []
            async with http.stream("GET", url) as response:
                async for line in response.aiter_lines():
                    if line.startswith("id: "):
                        ids.append(int(line[4:]))
            return ids

        following = asyncio.create_task(follow())
        await _until(lambda: running.hub_count == 2)
        pad = "x" * 7000
        for _ in range(0, 1200, 20):
            events = [{"kind": "progress", "data": {"i": i, "pad": pad}} for i in range(20)]
            from bi_engine.db import events as event_log

            await event_log.append(writer.conn, job, events)
        await writer.finish(job)
        assert await asyncio.wait_for(following, 20) == list(range(1, 1202))
    assert sub.lagged or len(sub._items) > 0, "the stalled client never had to wait"
    assert len(sub._items) <= running.live.hub.capacity
    stalled.close()  # type: ignore[attr-defined]
    await _until(lambda: running.hub_count == 0)
    del stalled_reader


async def test_at_shutdown_every_stream_ends_and_websockets_say_restart(
    running: Running, writer: Writer
) -> None:
    job = await writer.new_job("u1")
    reader, client = await _open_stream(running, job)
    ws_url = running.url.replace("http", "ws") + f"{API_PREFIX}/ws/jobs/{job}?last_event_id=0"
    async with connect(ws_url + f"&token={running.token}") as ws:
        await _until(lambda: running.hub_count == 2)
        running.live.keepalive.end_all()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1012
    # The chunked body ends (the connection stays open): EventSource reconnects.
    assert await asyncio.wait_for(reader.readuntil(b"\r\n0\r\n\r\n"), 5)
    with contextlib.suppress(Exception):
        client.close()  # type: ignore[attr-defined]
    assert running.hub_count == 0


async def test_the_cli_follower_resumes_after_a_drop_without_gap_or_duplicate(
    running: Running, writer: Writer
) -> None:
    from bi_engine.live.client import follow

    job = await writer.new_job("u1")
    await writer.progress(job, 10, 20, 30)
    drops: list[str | None] = []
    url = f"{running.url}{API_PREFIX}/jobs/{job}/events?token={running.token}"
    async with httpx.AsyncClient(timeout=20) as http:
        events = follow(http, url, on_reconnect=drops.append)
        seen = [await anext(events) for _ in range(3)]
        running.live.keepalive.end_all()  # the server goes away mid-stream
        await writer.progress(job, 40, 50)
        await writer.finish(job)
        seen += [event async for event in events]
    assert [event.id for event in seen] == [str(seq) for seq in range(1, 7)]
    assert seen[-1].kind == "cancelled"
    assert drops == ["3"]


async def test_a_client_stalled_for_too_long_is_dropped(
    running: Running, writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bi_engine.db import events as event_log
    from bi_engine.live import sse, stream

    monkeypatch.setattr(stream, "STALLED_WRITE_S", 0.5)
    monkeypatch.setattr(sse, "STALLED_WRITE_S", 0.5)
    job = await writer.new_job("u1")
    _, stalled = await _open_stream(running, job)
    stalled.transport.pause_reading()  # type: ignore[attr-defined]
    pad = "x" * 7000
    for _ in range(0, 1200, 20):
        events = [{"kind": "progress", "data": {"i": i, "pad": pad}} for i in range(20)]
        await event_log.append(writer.conn, job, events)
    await _until(lambda: running.hub_count == 0, timeout=10)  # dropped, though still connected
    stalled.close()  # type: ignore[attr-defined]


async def test_head_answers_the_headers_and_holds_no_stream(
    running: Running, writer: Writer
) -> None:
    job = await writer.new_job("u1")
    url = f"{running.url}{API_PREFIX}/jobs/{job}/events?token={running.token}"
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.head(url)
        refused = await http.post(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"
    assert response.content == b""
    assert refused.status_code == 405
    await _until(lambda: running.hub_count == 0)
