"""Replay-then-live: the event log up to now, then the live mailbox, seamlessly.

A stream subscribes to the hub BEFORE it reads the log, so an event committed while the
replay runs is either in the replay or in the mailbox (or both). At the seam every event is
accepted only if its seq is exactly the next one: older seqs are duplicates and dropped, a
jump ahead means something was missed (a lagging mailbox, a listener outage) and the gap is
read from the log before going on. A job stream ends with the job's terminal event.

The feed of all jobs cannot be positioned by one seq. Its event id is ``<job_id>:<seq>``;
on resume it re-reads every visible event created from ``FEED_GRACE`` before that event
(covering transactions still in flight at that moment) and drops, per job, what the client
already had. An event may thus arrive twice across a resume, never be lost: clients that
care de-duplicate by ``(job_id, seq)``, which every feed event carries.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from datetime import datetime, timedelta
from typing import Final

import structlog

from bi_engine.db import event_feed
from bi_engine.live.events import LiveEvent
from bi_engine.live.hub import Hub
from bi_engine.live.listener import Reader, read_feed_pages, read_job_log

DirectWrite = Callable[[LiveEvent], "asyncio.Future[None] | None"]
"""Writes one event to the client now; returns a future when the write has to wait."""

STALLED_WRITE_S: Final = 60.0
"""A client that has not taken a frame for this long is dropped (it resumes later)."""
FEED_GRACE: Final = timedelta(seconds=30)
FEED_SEEN_JOBS: Final = 4096
"""Jobs per feed whose last delivered seq is remembered for de-duplication."""

log = structlog.get_logger("bi_engine.live.stream")


class JobStream:
    """One client's view of one job, from ``after`` to the terminal event.

    Construct it (which takes a stream slot, or raises ``TooManyStreams``) before answering
    the request; iterate :meth:`batches`; :meth:`close` it however the response ends.
    """

    __slots__ = (
        "_direct",
        "_ended",
        "_finished",
        "_hub",
        "_job_id",
        "_owner",
        "_reader",
        "_writing",
        "complete",
        "log_end",
        "sub",
    )

    def __init__(
        self,
        hub: Hub,
        reader: Reader,
        *,
        job_id: str,
        owner: str,
        caller: str,
        after: int,
        finished: bool,
        log_end: int | None = None,
    ) -> None:
        self._hub = hub
        self._reader = reader
        self._job_id = job_id
        self._owner = owner
        self._finished = finished
        self.log_end = log_end
        """The job's last seq when the stream opened: no client can have seen beyond it."""
        self._direct: DirectWrite | None = None
        self._writing: asyncio.Future[None] | None = None
        self._ended = False
        self.complete = False
        """The job's log was delivered to its end (terminal event, or a finished job)."""
        self.sub = hub.open_job(job_id, user_id=caller, owner=owner, position=after)

    def resume_after(self, seq: int) -> None:
        """Set the resume point before iterating (the WebSocket learns it after opening)."""
        if seq < 0 or (self.log_end is not None and seq > self.log_end):
            raise ValueError(f"seq {seq} is outside the job's log")
        self.sub.position = seq

    @property
    def position(self) -> int:
        """The last seq handed out."""
        return self.sub.position

    def close(self) -> None:
        self._hub.close(self.sub)

    async def batches(
        self, direct: DirectWrite | None = None
    ) -> AsyncGenerator[list[LiveEvent], None]:
        """Lists of consecutive events; the last list ends with the terminal event.

        With ``direct``, live events that arrive while the stream is idle are written by
        the publisher itself through ``direct`` (the seam rule applied in place) and never
        appear in a batch; the mailbox takes over whenever a write has to wait or a gap
        shows, and the stream ends once the terminal event has been written.
        """
        try:
            batch, done = await self._settle([], read_log=True)
            if batch:
                yield batch
            if done or self._finished:
                self.complete = True
                return
            while True:
                if direct is not None:
                    self._direct = direct
                    self.sub.sink = self._take_directly
                await self.sub.wait()
                self.sub.sink = None
                if self._writing is not None:
                    writing, self._writing = self._writing, None
                    await asyncio.wait_for(writing, STALLED_WRITE_S)
                if self._ended or self.sub.closed:
                    return
                lagged, self.sub.lagged = self.sub.lagged, False
                batch, done = await self._settle(self.sub.take(), read_log=lagged)
                if batch:
                    yield batch
                if done:
                    self.complete = True
                    return
        finally:
            self.sub.sink = None
            if self._writing is not None:
                self._writing.cancel()
            self.close()

    def _take_directly(self, event: LiveEvent) -> bool:
        """The hub's fast path: write the next seq now, or decline (mailbox) on a gap."""
        position = self.sub.position
        if event.seq <= position:
            return True
        if event.seq != position + 1 or self._direct is None:
            return False
        self.sub.position = event.seq
        try:
            writing = self._direct(event)
        except Exception as exc:  # the client went away mid-write: end this stream
            log.info("live.direct_write_failed", job_id=self._job_id, error=repr(exc))
            writing, self._ended = None, True
        if writing is not None or event.terminal or self._ended:
            self.sub.sink = None
            self._writing = writing
            self._ended = self._ended or event.terminal
            self.complete = event.terminal
            self.sub.wake()
        return True

    async def _settle(
        self, items: list[LiveEvent], *, read_log: bool
    ) -> tuple[list[LiveEvent], bool]:
        """Accept ``items`` in seq order, reading the log first if asked or on a gap."""
        if read_log:
            items = await self._read_log() + items
        batch, done, gap = self._accept(items)
        if gap and not done:
            more, done, gap = self._accept(await self._read_log() + items)
            batch += more
            if gap and not done:
                more, done = self._skip_gap(items)
                batch += more
        return batch, done

    def _accept(self, items: Iterable[LiveEvent]) -> tuple[list[LiveEvent], bool, bool]:
        """``(accepted, reached the terminal event, stopped at a gap)``."""
        accepted: list[LiveEvent] = []
        position = self.sub.position
        items = list(items)
        known = {event.seq for event in items}
        for event in items:
            if event.seq <= position:
                continue
            if event.seq > position + 1:
                self.sub.position = position
                return accepted, False, True
            accepted.append(event)
            position = event.seq
            # A terminal event followed by more (the job was retried) is not the end.
            if event.terminal and event.seq + 1 not in known:
                self.sub.position = position
                return accepted, True, False
        self.sub.position = position
        return accepted, False, False

    def _skip_gap(self, items: list[LiveEvent]) -> tuple[list[LiveEvent], bool]:
        """The log itself lacks the missing seqs (pruned): go on from the next live event."""
        ahead = [event for event in items if event.seq > self.sub.position]
        log.warning(
            "live.gap_in_log", job_id=self._job_id, after=self.sub.position, next=ahead[0].seq
        )
        self.sub.position = ahead[0].seq - 1
        accepted, done, _ = self._accept(ahead)
        return accepted, done

    async def _read_log(self) -> list[LiveEvent]:
        async with self._reader() as conn:
            return await read_job_log(conn, self._job_id, self._owner, self.sub.position)


class FeedStream:
    """Every event of ``only_user``'s jobs (every job when ``None``), live, never ending."""

    __slots__ = ("_hub", "_only_user", "_reader", "_resume", "_seen", "sub")

    def __init__(
        self,
        hub: Hub,
        reader: Reader,
        *,
        caller: str,
        only_user: str | None,
        resume: tuple[str, int] | None,
    ) -> None:
        self._hub = hub
        self._reader = reader
        self._only_user = only_user
        self._resume = resume
        self._seen: OrderedDict[str, int] = OrderedDict()
        self.sub = hub.open_feed(user_id=caller, only_user=only_user)

    def close(self) -> None:
        self._hub.close(self.sub)

    async def batches(self) -> AsyncGenerator[list[LiveEvent], None]:
        try:
            if self._resume is not None:
                async for batch in self._replay_from_cursor(*self._resume):
                    yield batch
            while True:
                await self.sub.wait()
                if self.sub.closed:
                    return
                items = self.sub.take()
                if self.sub.lagged:
                    self.sub.lagged = False
                    async for batch in self._replay_since(_parse_at(self.sub.lag_at)):
                        yield batch
                batch = self._fresh(items)
                if batch:
                    yield batch
        finally:
            self.close()

    async def _replay_from_cursor(self, job_id: str, seq: int) -> AsyncIterator[list[LiveEvent]]:
        async with self._reader() as conn:
            cursor = await event_feed.cursor_event(conn, uuid.UUID(job_id), seq)
        if cursor is None or self._only_user not in (None, cursor[1]):
            log.info("live.feed_cursor_unknown", job_id=job_id, seq=seq)
            return
        self._remember(job_id, seq)
        async for batch in self._replay_since(cursor[0]):
            yield batch

    async def _replay_since(self, since: datetime | None) -> AsyncIterator[list[LiveEvent]]:
        if since is None:
            return
        async with self._reader() as conn:
            after_id = await event_feed.floor_id(conn, since - FEED_GRACE)
            async for page in read_feed_pages(conn, after_id=after_id, owner=self._only_user):
                batch = self._fresh(page)
                if batch:
                    yield batch

    def _fresh(self, items: Iterable[LiveEvent]) -> list[LiveEvent]:
        fresh = []
        for event in items:
            last = self._seen.get(event.job_id)
            if last is not None and event.seq <= last:
                continue
            self._remember(event.job_id, event.seq)
            fresh.append(event)
        return fresh

    def _remember(self, job_id: str, seq: int) -> None:
        known = job_id in self._seen
        self._seen[job_id] = seq
        if known:
            self._seen.move_to_end(job_id)
        elif len(self._seen) > FEED_SEEN_JOBS:
            self._seen.popitem(last=False)


def _parse_at(at: str) -> datetime | None:
    try:
        return datetime.fromisoformat(at)
    except ValueError:
        return None
