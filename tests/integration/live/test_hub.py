"""The hub routes by job and owner, bounds every mailbox, and counts stream slots."""

from __future__ import annotations

import asyncio

import pytest

from bi_engine.live.events import LiveEvent, parse_payload
from bi_engine.live.hub import Hub, TooManyStreams

pytestmark = pytest.mark.unit


def _event(job: str, seq: int, owner: str = "u1", kind: str = "progress") -> LiveEvent:
    return LiveEvent(job_id=job, seq=seq, kind=kind, data={"progress": seq}, user_id=owner)


def test_events_reach_job_subscribers_and_their_owners_feeds_only() -> None:
    hub = Hub()
    mine = hub.open_job("a", user_id="u1", owner="u1")
    other_job = hub.open_job("b", user_id="u1", owner="u1")
    my_feed = hub.open_feed(user_id="u1", only_user="u1")
    their_feed = hub.open_feed(user_id="u2", only_user="u2")
    admin_feed = hub.open_feed(user_id="root", only_user=None)
    hub.publish([_event("a", 1), _event("a", 2)])
    assert [e.seq for e in mine.take()] == [1, 2]
    assert other_job.take() == []
    assert [e.seq for e in my_feed.take()] == [1, 2]
    assert their_feed.take() == []
    assert [e.seq for e in admin_feed.take()] == [1, 2]


def test_a_seq_published_twice_is_delivered_once() -> None:
    hub = Hub()
    sub = hub.open_job("a", user_id="u1", owner="u1")
    hub.publish([_event("a", 1), _event("a", 2)])
    hub.publish([_event("a", 1), _event("a", 2), _event("a", 3)])
    assert [e.seq for e in sub.take()] == [1, 2, 3]


def test_an_overflowing_mailbox_is_emptied_and_marked_lagged_without_touching_others() -> None:
    hub = Hub(capacity=4)
    slow = hub.open_job("a", user_id="u1", owner="u1")
    fast = hub.open_job("a", user_id="u2", owner="u1")
    for seq in range(1, 11):
        hub.publish([_event("a", seq)])
        assert [e.seq for e in fast.take()] == [seq]
    assert slow.lagged
    assert len(slow.take()) <= 4
    assert not fast.lagged


def test_each_event_is_encoded_once_and_shared() -> None:
    event = _event("a", 7)
    assert event.sse_frame is event.sse_frame
    assert event.sse_frame == b'id: 7\nevent: progress\ndata: {"progress":7}\n\n'
    assert event.feed_frame.startswith(b"id: a:7\nevent: progress\ndata: ")
    assert '"seq":7' in event.ws_text


def test_the_stream_limit_is_per_user_and_slots_come_back_on_close() -> None:
    hub = Hub(max_streams_per_user=2)
    first = hub.open_job("a", user_id="u1", owner="u1")
    hub.open_feed(user_id="u1", only_user="u1")
    with pytest.raises(TooManyStreams) as refused:
        hub.open_job("b", user_id="u1", owner="u1")
    assert refused.value.status_code == 429
    hub.open_job("a", user_id="u2", owner="u1")
    hub.close(first)
    hub.close(first)
    hub.open_job("b", user_id="u1", owner="u1")
    assert hub.streams_of("u1") == 2
    assert hub.subscriber_count == 3


async def test_close_wakes_a_waiting_stream() -> None:
    hub = Hub()
    sub = hub.open_job("a", user_id="u1", owner="u1")
    waiting = asyncio.create_task(sub.wait())
    await asyncio.sleep(0)
    hub.close(sub)
    await asyncio.wait_for(waiting, 1)
    assert hub.subscriber_count == 0


@pytest.mark.parametrize(
    "payload",
    ["", "{", "[]", '{"v":2,"events":[]}', '{"v":1,"events":[{"seq":1}]}', '{"v":1,"refs":[{}]}'],
)
def test_malformed_payloads_are_rejected(payload: str) -> None:
    from bi_engine.live.events import PayloadError

    with pytest.raises(PayloadError):
        parse_payload(payload)
