"""Bounded fan-out: publishing never waits for a client and never grows without bound.

Each subscriber owns a small mailbox. The listener publishes synchronously: an event is
appended to every interested mailbox and the waiting stream, if any, is woken. A mailbox
that overflows is emptied and marked *lagged*: its stream then reads what it missed from
the event log (the database), so a slow client costs memory for at most ``capacity``
events and never delays anyone else.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import ClassVar, Final

from bi_engine.errors import BIError
from bi_engine.live.events import LiveEvent

DEFAULT_CAPACITY: Final = 256
"""Events a mailbox holds before its stream falls back to reading the log."""
MAX_STREAMS_PER_USER: Final = 32
"""Concurrent SSE + WebSocket streams one user may hold on one API process."""
STREAM_RETRY_AFTER_S: Final = 5
RECENT_JOBS: Final = 100_000
"""Jobs whose last published seq the hub remembers to drop duplicates after a catch-up."""


class TooManyStreams(BIError):
    """Too many live streams are open for this user; close one or retry later."""

    status_code: ClassVar[int] = 429
    code: ClassVar[str] = "too_many_streams"
    retry_after_s: ClassVar[int] = STREAM_RETRY_AFTER_S


class Subscription:
    """One client's mailbox: a job's events (``job_id`` set) or a user's feed of all jobs."""

    __slots__ = (
        "_capacity",
        "_items",
        "_waiter",
        "closed",
        "feed_user",
        "job_id",
        "lag_at",
        "lagged",
        "position",
        "sink",
        "user_id",
    )

    def __init__(
        self,
        *,
        user_id: str,
        capacity: int,
        job_id: str | None = None,
        feed_user: str | None = None,
        position: int = 0,
    ) -> None:
        self.user_id = user_id
        self.job_id = job_id
        self.feed_user = feed_user
        """Feeds only: the owner whose jobs it sees; ``None`` sees every job (admin)."""
        self.position = position
        """Job streams: the last seq handed to the client (the catch-up origin)."""
        self.lagged = False
        self.lag_at = ""
        """Feeds only: ``at`` of the oldest event dropped by the overflow (resync origin)."""
        self.closed = False
        self.sink: Callable[[LiveEvent], bool] | None = None
        """Set by a stream parked in :meth:`wait`: takes an event directly (returns True)
        or declines it (False), which sends it through the mailbox."""
        self._capacity = capacity
        self._items: list[LiveEvent] = []  # a deque would preallocate 760 bytes per client
        self._waiter: asyncio.Future[None] | None = None

    def push(self, event: LiveEvent) -> None:
        """Never blocks: on overflow drop the backlog and let the stream re-read the log."""
        if self.closed:
            return
        sink = self.sink
        if sink is not None and not self._items and sink(event):
            return
        if len(self._items) >= self._capacity:
            if not self.lagged:
                self.lag_at = self._items[0].at if self._items else event.at
            self._items.clear()
            self.lagged = True
        else:
            self._items.append(event)
        self.wake()

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def mark_lagged(self) -> None:
        """Ask the stream to resynchronise from the log (e.g. after the listener reconnected)."""
        self._items.clear()
        self.lagged = True
        self.wake()

    @property
    def parked(self) -> bool:
        """Its stream is waiting for events (not writing): safe to send a heartbeat."""
        return self._waiter is not None and not self._waiter.done()

    def take(self) -> list[LiveEvent]:
        """Everything queued, oldest first, without waiting."""
        items, self._items = self._items, []
        return items

    async def wait(self) -> None:
        """Return once an event, a lag or a close is pending."""
        if self._items or self.lagged or self.closed:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None


class Hub:
    """Routes published events to job subscribers and to feeds (per owner, or all for admins)."""

    def __init__(
        self,
        *,
        capacity: int = DEFAULT_CAPACITY,
        max_streams_per_user: int = MAX_STREAMS_PER_USER,
        recent_jobs: int = RECENT_JOBS,
    ) -> None:
        self.capacity = capacity
        self.max_streams_per_user = max_streams_per_user
        self._by_job: dict[str, set[Subscription]] = {}
        self._feeds_all: set[Subscription] = set()
        self._feeds_by_user: dict[str, set[Subscription]] = {}
        self._per_user: dict[str, int] = {}
        self._owners: dict[str, str] = {}
        self._last_seq: OrderedDict[str, int] = OrderedDict()
        self._recent_jobs = recent_jobs
        self._count = 0

    @property
    def subscriber_count(self) -> int:
        return self._count

    @property
    def has_feeds(self) -> bool:
        return bool(self._feeds_all or self._feeds_by_user)

    def streams_of(self, user_id: str) -> int:
        return self._per_user.get(user_id, 0)

    def open_job(self, job_id: str, *, user_id: str, owner: str, position: int = 0) -> Subscription:
        """Subscribe BEFORE replaying the log, so nothing committed meanwhile is missed."""
        sub = self._admit(Subscription(user_id=user_id, capacity=self.capacity, job_id=job_id))
        sub.position = position
        self._by_job.setdefault(job_id, set()).add(sub)
        self._owners[job_id] = owner
        return sub

    def open_feed(self, *, user_id: str, only_user: str | None) -> Subscription:
        """All jobs of ``only_user``, or of everyone when ``only_user`` is ``None``."""
        sub = self._admit(
            Subscription(user_id=user_id, capacity=self.capacity, feed_user=only_user)
        )
        if only_user is None:
            self._feeds_all.add(sub)
        else:
            self._feeds_by_user.setdefault(only_user, set()).add(sub)
        return sub

    def close(self, sub: Subscription) -> None:
        """Idempotent: forget the mailbox and release the user's stream slot."""
        if sub.closed:
            return
        sub.closed = True
        sub.take()
        sub.wake()
        if sub.job_id is not None:
            if not _discard(self._by_job, sub.job_id, sub):
                self._owners.pop(sub.job_id, None)
        elif sub.feed_user is None:
            self._feeds_all.discard(sub)
        else:
            _discard(self._feeds_by_user, sub.feed_user, sub)
        left = self._per_user.get(sub.user_id, 1) - 1
        if left > 0:
            self._per_user[sub.user_id] = left
        else:
            self._per_user.pop(sub.user_id, None)
        self._count -= 1

    def close_all(self) -> int:
        """Close every subscription (server shutdown); return how many there were."""
        subs = [*self._feeds_all]
        for index in (self._by_job, self._feeds_by_user):
            for group in index.values():
                subs.extend(group)
        for sub in subs:
            self.close(sub)
        return len(subs)

    def publish(self, events: Iterable[LiveEvent]) -> int:
        """Deliver each event once per interested mailbox; drop seqs already published.

        Returns how many events were new.
        """
        fresh = 0
        for event in events:
            if self._seen(event):
                continue
            fresh += 1
            # Snapshots: a stream that ends while being written to leaves its set at once.
            for sub in tuple(self._by_job.get(event.job_id, ())):
                sub.push(event)
            for sub in tuple(self._feeds_all):
                sub.push(event)
            for sub in tuple(self._feeds_by_user.get(event.user_id, ())):
                sub.push(event)
        return fresh

    def catch_up_origins(self) -> list[tuple[str, str, int]]:
        """``(job_id, owner, after_seq)`` per subscribed job: what to re-read after an outage."""
        origins = []
        for job_id, subs in self._by_job.items():
            lowest = min(sub.position for sub in subs)
            after = self._last_seq.get(job_id, lowest)
            origins.append((job_id, self._owners.get(job_id, ""), after))
        return origins

    def wants(self, job_id: str, owner: str) -> bool:
        """Does anyone listen to this job? (Large NOTIFYs are only read back if so.)"""
        return job_id in self._by_job or bool(self._feeds_all) or owner in self._feeds_by_user

    def _admit(self, sub: Subscription) -> Subscription:
        held = self._per_user.get(sub.user_id, 0)
        if held >= self.max_streams_per_user:
            raise TooManyStreams(details={"limit": self.max_streams_per_user})
        self._per_user[sub.user_id] = held + 1
        self._count += 1
        return sub

    def _seen(self, event: LiveEvent) -> bool:
        last = self._last_seq.get(event.job_id)
        if last is not None and event.seq <= last:
            return True
        self._last_seq[event.job_id] = event.seq
        if last is not None:
            self._last_seq.move_to_end(event.job_id)
        elif len(self._last_seq) > self._recent_jobs:
            self._last_seq.popitem(last=False)
        return False


def _discard(index: dict[str, set[Subscription]], key: str, sub: Subscription) -> bool:
    """Remove ``sub``; return whether ``key`` still has subscribers."""
    subs = index.get(key)
    if subs is None:
        return False
    subs.discard(sub)
    if not subs:
        del index[key]
        return False
    return True
