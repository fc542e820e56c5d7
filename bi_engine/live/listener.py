"""The one LISTEN connection of an API process, and how it survives losing it.

A single dedicated connection LISTENs on the engine's channel and publishes every event to
the hub. When it is lost the listener reconnects with exponential backoff, LISTENs again
and then re-reads the log: for every subscribed job, the events after the last seq the hub
published; for the feeds, everything created since the last moment the connection was known
to be healthy (minus a grace period covering in-flight transactions). The hub drops what it
had already published, so the outage shows neither a gap nor a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg
import structlog

from bi_engine import constants
from bi_engine.db import connection as db_connection
from bi_engine.db import event_feed
from bi_engine.db import events as event_log
from bi_engine.live import events as live_events
from bi_engine.live.events import EventRef, LiveEvent
from bi_engine.live.hub import Hub

Reader = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]
"""Opens a connection for reading the log (the API's pool, or a dedicated one)."""

PROBE_EVERY_S: Final = 10.0
"""Idle time after which the connection is probed (and the healthy mark advanced)."""
PROBE_TIMEOUT_S: Final = 5.0
BACKOFF_INITIAL_S: Final = 0.05
BACKOFF_MAX_S: Final = 5.0
CATCH_UP_GRACE: Final = timedelta(seconds=30)
"""Longest transaction between an event's ``created_at`` and its commit."""
READ_PAGE: Final = 1000
APPLICATION_NAME: Final = "bi-engine-listener"

log = structlog.get_logger("bi_engine.live.listener")


def dedicated_reader(database_url: str, schema: str) -> Reader:
    """A reader that opens (and closes) its own connection each time."""

    @contextlib.asynccontextmanager
    async def reader() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        conn = await db_connection.connect(database_url, schema, application_name="bi-engine-live")
        async with conn:
            yield conn

    return reader


class Listener:
    """Owns the LISTEN connection and its reconnect loop; publishes into ``hub``."""

    def __init__(
        self,
        database_url: str,
        schema: str,
        hub: Hub,
        reader: Reader,
        *,
        probe_every_s: float = PROBE_EVERY_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        self._database_url = database_url
        self._schema = schema
        self._channel = constants.events_channel(schema)
        self._hub = hub
        self._reader = reader
        self._probe_every_s = probe_every_s
        self._backoff_max_s = backoff_max_s
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._healthy_at: datetime | None = None
        self.backend_pid: int | None = None
        """The server process of the LISTEN connection (operators, tests)."""
        self.connects = 0
        """How many times the connection was (re)established."""
        self.caught_up = 0
        """New events found in the log after (re)connecting (missed while disconnected)."""
        self._was_up = False

    @property
    def connected(self) -> bool:
        return self.backend_pid is not None

    async def start(self, *, wait_s: float = 10.0) -> None:
        """Start listening; wait up to ``wait_s`` for the first connection (then go on)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="bi-live-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), wait_s)

    async def wait_connected(self, timeout_s: float) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout_s)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        delay = BACKOFF_INITIAL_S
        while True:
            try:
                await self._session()
            except (psycopg.Error, OSError, TimeoutError) as exc:
                log.warning("live.listener_lost", error=str(exc), retry_in_s=round(delay, 3))
            except Exception:
                log.exception("live.listener_failed", retry_in_s=round(delay, 3))
            self._ready.clear()
            self.backend_pid = None
            if self._was_up:
                delay = BACKOFF_INITIAL_S
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._backoff_max_s)

    async def _session(self) -> None:
        self._was_up = False
        conn = await db_connection.connect(
            self._database_url, self._schema, application_name=APPLICATION_NAME
        )
        async with conn:
            await event_feed.listen(conn, self._channel)
            now = await event_feed.server_clock(conn)
            await self._catch_up(self._healthy_at)
            self._healthy_at = now
            self.backend_pid = conn.info.backend_pid
            self.connects += 1
            self._was_up = True
            self._ready.set()
            log.info("live.listener_connected", channel=self._channel, pid=self.backend_pid)
            await self._pump(conn)

    async def _pump(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            async for notify in conn.notifies(timeout=self._probe_every_s):
                await self._handle(notify.payload)
            self._healthy_at = await asyncio.wait_for(
                event_feed.server_clock(conn), PROBE_TIMEOUT_S
            )

    async def _handle(self, payload: str) -> None:
        try:
            events, refs = live_events.parse_payload(payload)
        except live_events.PayloadError as exc:
            log.warning("live.bad_payload", error=str(exc))
            return
        if refs:
            events.extend(await self._read_refs(refs))
        self._hub.publish(events)

    async def _read_refs(self, refs: Iterable[EventRef]) -> list[LiveEvent]:
        wanted = [ref for ref in refs if self._hub.wants(ref.job_id, ref.user_id)]
        found: list[LiveEvent] = []
        if not wanted:
            return found
        async with self._reader() as conn:
            for ref in wanted:
                after, until = ref.first_seq - 1, ref.last_seq
                found.extend(await read_job_log(conn, ref.job_id, ref.user_id, after, until))
        return found

    async def _catch_up(self, healthy_at: datetime | None) -> None:
        """Re-read what the outage hid: subscribed jobs by seq, feeds by time."""
        origins = self._hub.catch_up_origins()
        if not origins and (healthy_at is None or not self._hub.has_feeds):
            return
        async with self._reader() as conn:
            for job_id, owner, after in origins:
                self._publish_caught_up(await read_job_log(conn, job_id, owner, after))
            if healthy_at is not None and self._hub.has_feeds:
                after_id = await event_feed.floor_id(conn, healthy_at - CATCH_UP_GRACE)
                async for page in read_feed_pages(conn, after_id=after_id, owner=None):
                    self._publish_caught_up(page)

    def _publish_caught_up(self, events: list[LiveEvent]) -> None:
        self.caught_up += self._hub.publish(events)


async def read_job_log(
    conn: psycopg.AsyncConnection[Any],
    job_id: str,
    owner: str,
    after_seq: int,
    until_seq: int | None = None,
) -> list[LiveEvent]:
    """The job's events after ``after_seq`` (through ``until_seq``), read page by page."""
    found: list[LiveEvent] = []
    while until_seq is None or after_seq < until_seq:
        rows = await event_log.read_after(conn, job_id, after_seq, READ_PAGE)
        found.extend(live_events.from_row(row, owner) for row in rows)
        if len(rows) < READ_PAGE:
            break
        after_seq = found[-1].seq
    if until_seq is not None:
        found = [event for event in found if event.seq <= until_seq]
    return found


async def read_feed_pages(
    conn: psycopg.AsyncConnection[Any], *, after_id: int, owner: str | None, max_pages: int = 100
) -> AsyncIterator[list[LiveEvent]]:
    """Feed events after the global id ``after_id``, a page at a time."""
    for _ in range(max_pages):
        rows = await event_feed.read_feed(conn, after_id=after_id, owner=owner, limit=READ_PAGE)
        if rows:
            yield [live_events.from_row(row, str(row["user_id"])) for row in rows]
            after_id = int(rows[-1]["id"])
        if len(rows) < READ_PAGE:
            return
