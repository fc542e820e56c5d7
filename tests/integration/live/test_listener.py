"""One LISTEN connection: every committed event reaches the hub, also across its loss."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from bi_engine import constants
from bi_engine.db import events as event_log
from bi_engine.live.hub import Hub, Subscription
from bi_engine.live.listener import Listener
from tests.conftest import TEST_SCHEMA
from tests.integration.live.conftest import Writer, terminate

pytestmark = pytest.mark.integration


async def _receive(sub: Subscription, until_seq: int, timeout: float = 10) -> list[int]:
    seqs: list[int] = []

    async def collect() -> None:
        while not seqs or seqs[-1] < until_seq:
            await sub.wait()
            seqs.extend(event.seq for event in sub.take())

    await asyncio.wait_for(collect(), timeout)
    return seqs


async def test_committed_events_reach_subscribers_in_order(
    listener: Listener, hub: Hub, writer: Writer
) -> None:
    job = await writer.new_job()
    sub = hub.open_job(job, user_id="u1", owner="u1")
    for percent in range(0, 100, 10):
        await writer.progress(job, percent)
    await writer.progress(job, 95, 96, 97)
    assert await _receive(sub, 13) == list(range(1, 14))


async def test_a_notify_too_large_to_carry_its_events_is_read_back(
    listener: Listener, hub: Hub, writer: Writer
) -> None:
    job = await writer.new_job()
    sub = hub.open_job(job, user_id="u1", owner="u1")
    big = "x" * 3000
    await writer.progress(job, 1)
    await event_log.append(
        writer.conn, job, [{"kind": "progress", "data": {"message": big}} for _ in range(4)]
    )
    events: list[int] = await _receive(sub, 5)
    assert events == [1, 2, 3, 4, 5]


async def test_losing_the_connection_loses_no_event(
    database_url: str, listener: Listener, hub: Hub, writer: Writer
) -> None:
    job = await writer.new_job()
    sub = hub.open_job(job, user_id="u1", owner="u1")
    feed = hub.open_feed(user_id="u1", only_user="u1")
    await writer.progress(job, 1, 2, 3)
    assert await _receive(sub, 3) == [1, 2, 3]
    pid = listener.backend_pid
    assert pid is not None
    await terminate(database_url, pid)
    await writer.progress(job, 4, 5)  # written while the listener is down
    await writer.progress(job, 6)
    assert await _receive(sub, 6) == [4, 5, 6]
    await listener.wait_connected(5)
    assert listener.connects == 2
    assert listener.caught_up == 3  # 4, 5, 6 came from the log, not from a NOTIFY
    assert listener.backend_pid not in (None, pid)
    await writer.progress(job, 7)
    assert await _receive(sub, 7) == [7]
    assert [event.seq for event in feed.take()] == list(range(1, 8))


async def test_a_bad_payload_is_skipped_and_listening_goes_on(
    database_url: str, listener: Listener, hub: Hub, writer: Writer
) -> None:
    job = await writer.new_job()
    sub = hub.open_job(job, user_id="u1", owner="u1")
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    async with conn:
        await conn.execute(
            "SELECT pg_notify(%s, 'not json')", (constants.events_channel(TEST_SCHEMA),)
        )
    await writer.progress(job, 1)
    assert await _receive(sub, 1) == [1]
    assert listener.connects == 1


async def test_the_listener_waits_for_a_database_that_is_not_there_yet(hub: Hub) -> None:
    def reader():  # never used: nothing is subscribed
        raise AssertionError

    listener = Listener("postgresql://postgres@127.0.0.1:1/nowhere", TEST_SCHEMA, hub, reader)
    await listener.start(wait_s=0.3)
    try:
        assert not listener.connected
    finally:
        await listener.stop()


async def test_streams_opened_before_the_first_connection_catch_up_on_it(
    database_url: str, hub: Hub, writer: Writer
) -> None:
    from bi_engine.live.listener import dedicated_reader

    job = await writer.new_job()
    sub = hub.open_job(job, user_id="u1", owner="u1")  # the listener is not running yet
    await writer.progress(job, 1, 2)
    listener = Listener(database_url, TEST_SCHEMA, hub, dedicated_reader(database_url, TEST_SCHEMA))
    await listener.start()
    try:
        assert await _receive(sub, 2) == [1, 2]
        assert listener.caught_up == 2
    finally:
        await listener.stop()
