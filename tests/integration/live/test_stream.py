"""Replay-then-live: contiguous seqs across the seam, resume, lag, finished jobs, feeds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bi_engine.live.events import LiveEvent
from bi_engine.live.hub import Hub
from bi_engine.live.listener import Listener, dedicated_reader
from bi_engine.live.stream import FeedStream, JobStream
from tests.conftest import TEST_SCHEMA
from tests.integration.live.conftest import Writer, terminate

pytestmark = pytest.mark.integration


def _job_stream(hub: Hub, url: str, job: str, after: int = 0, finished: bool = False) -> JobStream:
    reader = dedicated_reader(url, TEST_SCHEMA)
    return JobStream(
        hub, reader, job_id=job, owner="u1", caller="u1", after=after, finished=finished
    )


async def _drain(batches: AsyncIterator[list[LiveEvent]], timeout: float = 15) -> list[int]:
    seqs: list[int] = []

    async def collect() -> None:
        async for batch in batches:
            seqs.extend(event.seq for event in batch)

    await asyncio.wait_for(collect(), timeout)
    return seqs


async def test_replay_then_live_is_contiguous_and_ends_at_the_terminal_event(
    database_url: str, listener: Listener, hub: Hub, writer: Writer
) -> None:
    job = await writer.new_job()
    await writer.progress(job, *range(1, 21))
    stream = _job_stream(hub, database_url, job)

    async def keep_writing() -> None:
        for percent in range(21, 61):
            await writer.progress(job, percent)
        await writer.finish(job)

    seqs, _ = await asyncio.gather(_drain(stream.batches()), keep_writing())
    assert seqs == list(range(1, 62))
    assert hub.subscriber_count == 0


async def test_resuming_replays_only_what_came_after(
    database_url: str, listener: Listener, hub: Hub, writer: Writer
) -> None:
    job = await writer.new_job()
    await writer.progress(job, 10, 20, 30, 40)
    stream = _job_stream(hub, database_url, job, after=2)
    task = asyncio.create_task(_drain(stream.batches()))
    await asyncio.sleep(0.1)
    await writer.progress(job, 50)
    await writer.finish(job)
    assert await task == [3, 4, 5, 6]


async def test_a_finished_job_replays_its_log_and_ends(
    database_url: str, listener: Listener, hub: Hub, writer: Writer
) -> None:
    job = await writer.new_job()
    await writer.progress(job, 50)
    await writer.finish(job)
    assert await _drain(_job_stream(hub, database_url, job, finished=True).batches()) == [1, 2]
    # Resuming after the terminal event: nothing to replay, the stream ends at once.
    resumed = _job_stream(hub, database_url, job, after=2, finished=True)
    assert await _drain(resumed.batches(), timeout=2) == []
    assert hub.subscriber_count == 0


async def test_a_stream_that_stops_reading_catches_up_from_the_log_with_bounded_memory(
    database_url: str, listener: Listener, writer: Writer
) -> None:
    hub = Hub(capacity=8)
    listener._hub = hub  # the fixture's listener, publishing into a small-mailbox hub
    job = await writer.new_job()
    stream = _job_stream(hub, database_url, job)
    batches = stream.batches()  # subscribed, but nobody reads
    await writer.progress(job, *range(1, 3))
    for percent in range(3, 200):
        await writer.progress(job, percent % 100)
    await writer.finish(job)
    await asyncio.sleep(0.3)
    assert stream.sub.lagged
    assert len(stream.sub._items) <= 8
    assert await _drain(batches) == list(range(1, 201))


async def test_closing_a_stream_early_releases_its_slot(
    database_url: str, listener: Listener, hub: Hub, writer: Writer
) -> None:
    job = await writer.new_job()
    await writer.progress(job, 1)
    stream = _job_stream(hub, database_url, job)
    batches = stream.batches()
    assert [e.seq for e in await anext(batches)] == [1]
    waiting = asyncio.create_task(anext(batches))
    await asyncio.sleep(0.05)
    waiting.cancel()  # what a client disconnect does to the response task
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert hub.subscriber_count == 0
    assert hub.streams_of("u1") == 0


async def test_a_stream_survives_the_listener_losing_its_connection(
    database_url: str, listener: Listener, hub: Hub, writer: Writer
) -> None:
    job = await writer.new_job()
    stream = _job_stream(hub, database_url, job)

    async def write_through_an_outage() -> None:
        await writer.progress(job, 1, 2)
        await asyncio.sleep(0.1)
        assert listener.backend_pid is not None
        await terminate(database_url, listener.backend_pid)
        for percent in range(3, 30):
            await writer.progress(job, percent)
        await writer.finish(job)

    seqs, _ = await asyncio.gather(_drain(stream.batches()), write_through_an_outage())
    assert seqs == list(range(1, 31))


async def test_a_feed_resumes_after_its_cursor_without_losing_events(
    database_url: str, listener: Listener, hub: Hub, writer: Writer
) -> None:
    mine_a, mine_b = await writer.new_job("u1"), await writer.new_job("u1")
    theirs = await writer.new_job("u2")
    reader = dedicated_reader(database_url, TEST_SCHEMA)
    await writer.progress(mine_a, 1, 2)
    await writer.progress(theirs, 1)
    await writer.progress(mine_b, 1)
    resumed = FeedStream(hub, reader, caller="u1", only_user="u1", resume=(mine_a, 1))
    batches = resumed.batches()
    got: list[tuple[str, int]] = []
    while len(got) < 2:
        got += [(e.job_id, e.seq) for e in await asyncio.wait_for(anext(batches), 5)]
    assert got == [(mine_a, 2), (mine_b, 1)]
    await writer.progress(theirs, 2)
    await writer.progress(mine_b, 2)
    live = await asyncio.wait_for(anext(batches), 5)
    assert [(e.job_id, e.seq) for e in live] == [(mine_b, 2)]
    await batches.aclose()
    assert hub.subscriber_count == 0


async def test_an_admin_feed_sees_every_job(
    database_url: str, listener: Listener, hub: Hub, writer: Writer
) -> None:
    reader = dedicated_reader(database_url, TEST_SCHEMA)
    feed = FeedStream(hub, reader, caller="root", only_user=None, resume=None)
    batches = feed.batches()
    pending = asyncio.create_task(anext(batches))
    await asyncio.sleep(0.05)
    one, two = await writer.new_job("u1"), await writer.new_job("u2")
    await writer.progress(one, 5)
    await writer.progress(two, 5)
    got = [(e.job_id, e.seq) for e in await asyncio.wait_for(pending, 5)]
    while len(got) < 2:
        got += [(e.job_id, e.seq) for e in await asyncio.wait_for(anext(batches), 5)]
    assert got == [(one, 1), (two, 1)]
    await batches.aclose()


async def test_a_retried_job_replays_past_its_earlier_terminal_event(
    database_url: str, listener: Listener, hub: Hub, writer: Writer
) -> None:
    """Cancelled, then retried: a fresh stream shows the retry instead of ending at seq 1."""
    job = await writer.new_job()
    await writer.append(job, "cancelled", {"status": "cancelled"})
    await writer.append(job, "status", {"status": "queued", "retry": True})
    await writer.progress(job, 50)
    stream = _job_stream(hub, database_url, job)
    task = asyncio.create_task(_drain(stream.batches()))
    await asyncio.sleep(0.1)
    await writer.finish(job)
    assert await task == [1, 2, 3, 4]
