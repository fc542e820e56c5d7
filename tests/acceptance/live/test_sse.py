"""SSE through a real ``bi-engine serve``: contiguous ids, resume, outages, fan-out, access."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from bi_engine.settings import Settings
from tests.acceptance.live.conftest import (
    API,
    Log,
    auth,
    bearer,
    listener_pid,
    new_id,
    sse_gauge,
    submit,
    terminate_backend,
    wait_for,
)
from tests.support.processes import ApiServer, Process
from tests.support.sse import read_sse

pytestmark = [pytest.mark.acceptance]

TERMINAL = {"completed", "failed", "cancelled"}


@pytest.fixture
async def http(server: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
        yield client


async def test_a_worker_job_streams_ids_1_to_n_and_ends_after_its_terminal_event(
    server: ApiServer, worker: Process, http: httpx.AsyncClient, live_settings: Settings
) -> None:
    job = await submit(server.url, live_settings, "alice", {"sleep_s": 2})
    reading = await read_sse(http, job["events_url"])  # the stream token of the 202
    assert reading.status == 200
    assert reading.retry is not None
    assert reading.retry > 0
    assert reading.ended
    assert reading.ids == list(range(1, len(reading.ids) + 1))
    kinds = [frame.event for frame in reading.frames]
    assert kinds[-1] == "completed"
    assert not TERMINAL & set(kinds[:-1])
    assert "progress" in kinds
    progress = [f.data["progress"] for f in reading.frames if f.event == "progress"]
    assert progress == sorted(progress)
    # The job is finished: a new stream replays the whole log and ends.
    again = await read_sse(http, job["events_url"], timeout=5)
    assert again.ids == reading.ids
    assert again.ended


async def test_resuming_mid_stream_continues_after_the_last_event_id(
    http: httpx.AsyncClient, event_log: Log, live_settings: Settings
) -> None:
    job = await event_log.new_job("alice")
    await event_log.progress(job, *range(10, 60, 10))
    url = f"{API}/jobs/{job}/events"
    headers = auth(live_settings, "alice")
    first = await read_sse(http, url, headers=headers, stop_after=3)
    assert first.ids == [1, 2, 3]
    await event_log.progress(job, 60)
    await event_log.finish(job)
    by_header = await read_sse(http, url, headers={**headers, "Last-Event-ID": "3"})
    assert by_header.ids == [4, 5, 6, 7]
    assert by_header.ended
    by_query = await read_sse(http, f"{url}?last_event_id=5", headers=headers)
    assert by_query.ids == [6, 7]
    # The header is what EventSource sends on reconnect: it wins over the URL's query.
    both = await read_sse(http, f"{url}?last_event_id=1", headers={**headers, "Last-Event-ID": "6"})
    assert both.ids == [7]


async def test_a_restarted_server_resumes_the_stream_without_a_gap(
    live_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    worker: Process,
    live_settings: Settings,
) -> None:
    api = ApiServer(live_database_url, tmp_path_factory.mktemp("restart")).start()
    try:
        job = await submit(api.url, live_settings, "alice", {"sleep_s": 5})
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
            before = await read_sse(http, job["events_url"], stop_after=3)
            assert before.ids == [1, 2, 3]

            async def follow_until_the_server_goes() -> list[int]:
                reading = await read_sse(
                    http, job["events_url"], headers={"Last-Event-ID": "3"}, timeout=20
                )
                assert reading.ended  # the old server ended the stream on shutdown
                return reading.ids

            following = asyncio.create_task(follow_until_the_server_goes())
            await asyncio.sleep(1.0)
            took = await asyncio.to_thread(api.stop)
            assert took < 5, "open streams must not hold the server's shutdown"
            during = await following
            await asyncio.sleep(1.5)  # the worker keeps writing while no server runs
            api.start()
            last = (during or [3])[-1]
            after = await read_sse(http, job["events_url"], headers={"Last-Event-ID": str(last)})
        ids = [1, 2, 3, *during, *after.ids]
        assert ids == list(range(1, len(ids) + 1))
        assert after.frames[-1].event == "completed"
    finally:
        api.stop()


async def test_the_stream_survives_the_loss_of_the_listener_connection(
    server: ApiServer,
    live_database_url: str,
    http: httpx.AsyncClient,
    event_log: Log,
    live_settings: Settings,
) -> None:
    job = await event_log.new_job("alice")
    url = f"{API}/jobs/{job}/events"
    reading = asyncio.create_task(read_sse(http, url, headers=auth(live_settings, "alice")))
    await event_log.progress(job, 1, 2, 3)
    await asyncio.sleep(0.3)
    await terminate_backend(live_database_url, await listener_pid(live_database_url))
    for percent in range(4, 40):
        await event_log.progress(job, percent)
    await event_log.finish(job)
    result = await reading
    assert result.ids == list(range(1, 41))
    assert result.frames[-1].event == "cancelled"

    async def reconnected() -> bool:
        try:
            await listener_pid(live_database_url)
        except AssertionError:
            return False
        return True

    await wait_for(reconnected, what="the listener to reconnect")


async def test_two_hundred_clients_each_receive_every_event(
    http: httpx.AsyncClient, event_log: Log, live_settings: Settings
) -> None:
    job = await event_log.new_job("alice")
    url = f"{API}/jobs/{job}/events"
    readers = [
        asyncio.create_task(
            read_sse(http, url, headers=auth(live_settings, f"watcher-{i}", "admin"), timeout=60)
        )
        for i in range(200)
    ]
    await wait_for(lambda: _gauge_at_least(http, 200), timeout=30, what="200 open streams")
    for percent in range(1, 31):
        await event_log.progress(job, percent)
    await event_log.finish(job)
    results = await asyncio.gather(*readers)
    assert all(r.ids == list(range(1, 32)) for r in results)
    await wait_for(lambda: _gauge_is(http, 0), what="every stream to be released")


async def test_a_client_that_stops_reading_does_not_delay_the_others(
    server: ApiServer, http: httpx.AsyncClient, event_log: Log, live_settings: Settings
) -> None:
    job = await event_log.new_job("alice")
    path = f"{API}/jobs/{job}/events?token={bearer(live_settings, 'alice')}"
    stalled_reader, stalled = await _stalled_client(server.port, path)
    try:
        await wait_for(lambda: _gauge_at_least(http, 1), what="the stalled stream")
        reading = asyncio.create_task(
            read_sse(http, f"{API}/jobs/{job}/events", headers=auth(live_settings, "alice"))
        )
        await wait_for(lambda: _gauge_at_least(http, 2), what="the reading stream")
        started = time.monotonic()
        for start in range(0, 1500, 20):  # ~11.7 MB: far more than the socket buffers (4 MB)
            await event_log.progress(job, *range(start, start + 20), pad=7800)
        written = time.monotonic()
        await event_log.finish(job)
        result = await reading
        caught_up = time.monotonic()
        assert result.ids == list(range(1, 1502))
        assert caught_up - written < 3.0, (written - started, caught_up - written)
    finally:
        stalled.close()
        await stalled.wait_closed()
    await wait_for(lambda: _gauge_is(http, 0), what="the stalled stream to be released")
    del stalled_reader


async def _stalled_client(
    port: int, path: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client that sends its request and then never reads (tiny receive buffer)."""
    import socket

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    writer.transport.pause_reading()  # type: ignore[attr-defined]
    return reader, writer


async def _gauge_at_least(http: httpx.AsyncClient, n: int) -> bool:
    return await sse_gauge(http) >= n


async def _gauge_is(http: httpx.AsyncClient, n: int) -> bool:
    return await sse_gauge(http) == n


async def test_someone_elses_job_is_404_and_bad_credentials_401(
    server: ApiServer, http: httpx.AsyncClient, event_log: Log, live_settings: Settings
) -> None:
    mine, theirs = await event_log.new_job("alice"), await event_log.new_job("bob")
    alice = auth(live_settings, "alice")
    for path in (f"jobs/{theirs}/events", f"jobs/{new_id()}/events", "jobs/not-a-uuid/events"):
        refused = await read_sse(http, f"{API}/{path}", headers=alice)
        assert refused.status == 404
        assert refused.frames[0].data["error"]["code"] == "job_not_found"
    admin = await read_sse(
        http,
        f"{API}/jobs/{theirs}/events",
        headers=auth(live_settings, "root", "admin"),
        stop_after=0,
        timeout=5,
    )
    assert admin.status == 200
    assert (await read_sse(http, f"{API}/jobs/{mine}/events")).status == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await read_sse(http, f"{API}/jobs/{mine}/events", headers=bad)).status == 401
    assert (await read_sse(http, f"{API}/events?token=nope")).status == 401


async def test_stream_tokens_open_only_their_own_job(
    server: ApiServer, worker: Process, http: httpx.AsyncClient, live_settings: Settings
) -> None:
    first = await submit(server.url, live_settings, "alice", {"sleep_s": 0})
    second = await submit(server.url, live_settings, "alice", {"sleep_s": 0})
    token = first["events_url"].split("token=", 1)[1]
    own = await read_sse(http, first["events_url"])
    assert own.status == 200
    assert own.ended
    other = await read_sse(http, f"{API}/jobs/{second['job_id']}/events?token={token}")
    assert other.status == 404
    feed = await read_sse(http, f"{API}/events?token={token}")
    assert feed.status == 401
    jwt_in_query = await read_sse(
        http, f"{API}/jobs/{second['job_id']}/events?token={bearer(live_settings, 'alice')}"
    )
    assert jwt_in_query.status == 200
    assert jwt_in_query.ended


async def test_a_last_event_id_that_is_not_of_this_stream_is_400(
    http: httpx.AsyncClient, event_log: Log, live_settings: Settings
) -> None:
    job = await event_log.new_job("alice")
    await event_log.progress(job, 1, 2)
    url = f"{API}/jobs/{job}/events"
    alice = auth(live_settings, "alice")
    for bad in ("x", "-1", "1.5", "3", "99999999999"):
        refused = await read_sse(http, url, headers={**alice, "Last-Event-ID": bad})
        assert refused.status == 400, bad
        assert refused.frames[0].data["error"]["code"] == "invalid_last_event_id"
    refused = await read_sse(http, f"{API}/events", headers={**alice, "Last-Event-ID": "12"})
    assert refused.status == 400


async def test_streams_beyond_the_per_user_limit_are_429_with_retry_after(
    server: ApiServer, http: httpx.AsyncClient, event_log: Log, live_settings: Settings
) -> None:
    from bi_engine.live.hub import MAX_STREAMS_PER_USER

    job = await event_log.new_job("carol")
    url = f"{API}/jobs/{job}/events"
    carol = auth(live_settings, "carol")
    held = [
        asyncio.create_task(read_sse(http, url, headers=carol, timeout=60))
        for _ in range(MAX_STREAMS_PER_USER)
    ]
    await wait_for(lambda: _gauge_at_least(http, MAX_STREAMS_PER_USER), what="streams")
    response = await http.get(url, headers=carol)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "too_many_streams"
    other_user = await read_sse(
        http, url, headers=auth(live_settings, "dave", "admin"), stop_after=0, timeout=5
    )
    assert other_user.status == 200
    await event_log.finish(job)
    assert all(r.ids == [1] for r in await asyncio.gather(*held))
    await wait_for(lambda: _gauge_is(http, 0), what="the streams to be released")


async def test_the_feed_carries_the_callers_jobs_and_resumes_by_job_and_seq(
    http: httpx.AsyncClient, event_log: Log, live_settings: Settings
) -> None:
    mine, theirs = await event_log.new_job("erin"), await event_log.new_job("frank")
    erin, root = auth(live_settings, "erin"), auth(live_settings, "root", "admin")
    own_feed = asyncio.create_task(read_sse(http, f"{API}/events", headers=erin, stop_after=3))
    admin_feed = asyncio.create_task(read_sse(http, f"{API}/events", headers=root, stop_after=4))
    await wait_for(lambda: _gauge_at_least(http, 2), what="two feeds")
    await event_log.progress(theirs, 1)
    await event_log.progress(mine, 1, 2)
    await event_log.progress(theirs, 2)
    await event_log.progress(mine, 3)
    own = await own_feed
    assert [f.id for f in own.frames] == [f"{mine}:1", f"{mine}:2", f"{mine}:3"]
    assert own.frames[0].data["job_id"] == mine
    assert own.frames[0].data["seq"] == 1
    everything = await admin_feed
    assert {mine, theirs} <= {f.data["job_id"] for f in everything.frames}
    resumed = await read_sse(
        http, f"{API}/events", headers={**erin, "Last-Event-ID": f"{mine}:1"}, stop_after=2
    )
    assert [f.id for f in resumed.frames] == [f"{mine}:2", f"{mine}:3"]
