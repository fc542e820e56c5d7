"""Server-Sent Events responses that cost one small task per client, not four.

sse-starlette's ``EventSourceResponse`` runs four tasks and a task group per connection
(about 25 KiB each, measured), which is most of the memory budget of a process holding
10,000 streams. These responses keep its wire format and headers but need only the request
task plus one task waiting for the disconnect; heartbeats and the shutdown drain are done
for all streams at once by :class:`~bi_engine.live.keepalive.Keepalive`, which uses
sse-starlette's shutdown signal.

Frames are encoded once per event. A job stream's replay is written by its own task; its
live events are written by the publisher straight into each client's ``send`` (see
:mod:`bi_engine.live.eager`), falling back to the task when a client is slow. The stream
is closed (its hub slot released) however the response ends.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import structlog
from starlette.types import Message, Receive, Scope, Send

from bi_engine.live.eager import run_eagerly
from bi_engine.live.events import LiveEvent
from bi_engine.live.keepalive import Keepalive
from bi_engine.live.stream import STALLED_WRITE_S, FeedStream, JobStream

RETRY_MS: Final = 2000
"""Tells EventSource how soon to reconnect after a drop."""
HEADERS: Final = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
)
_RETRY: Final[Message] = {
    "type": "http.response.body",
    "body": b"retry: %d\n\n" % RETRY_MS,
    "more_body": True,
}
_PING: Final[Message] = {"type": "http.response.body", "body": b": ping\n\n", "more_body": True}
_END: Final[Message] = {"type": "http.response.body", "body": b"", "more_body": False}

log = structlog.get_logger("bi_engine.live.sse")


class _EventStreamResponse:
    """``text/event-stream``: ``retry:``, then the stream's frames, then the end.

    A plain ASGI callable with slots (not a Starlette ``Response``, which renders a body and
    carries a ``__dict__``): 10,000 of these live at once.
    """

    __slots__ = ("_keepalive", "_pinging", "_send", "_stream")

    def __init__(self, stream: JobStream | FeedStream, keepalive: Keepalive) -> None:
        self._stream = stream
        self._keepalive = keepalive
        self._send: Send | None = None
        self._pinging: asyncio.Future[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._send = send
        try:
            start = {"type": "http.response.start", "status": 200, "headers": list(HEADERS)}
            await send(start)
            if scope.get("method") == "HEAD":
                await send(_END)
                return
            await self._serve(receive, send)
        finally:
            self._stream.close()
            if self._pinging is not None:
                self._pinging.cancel()

    async def _serve(self, receive: Receive, send: Send) -> None:
        watcher = asyncio.ensure_future(self._until_disconnect(receive))
        self._keepalive.add(self._ping)
        try:
            await self._write(send, _RETRY)
            await self._pump(send)
            await self._write(send, _END)
        except TimeoutError:
            # Not even the end of the body would get through: return without it, and the
            # server closes the connection. The client resumes with Last-Event-ID.
            log.info("live.client_stalled", stalled_s=STALLED_WRITE_S)
        finally:
            self._keepalive.discard(self._ping)
            watcher.cancel()

    async def _pump(self, send: Send) -> None:
        raise NotImplementedError

    @staticmethod
    async def _write(send: Send, message: Message) -> None:
        """The task's own writes (replay, slow clients): bounded by ``STALLED_WRITE_S``."""
        await asyncio.wait_for(send(message), STALLED_WRITE_S)

    async def _until_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            continue
        self._stream.close()

    def _ping(self) -> None:
        """Heartbeat comment, only while the stream is idle (else its frames keep it alive)."""
        busy = self._pinging is not None and not self._pinging.done()
        if self._send is None or busy or not self._stream.sub.parked:
            return
        self._pinging = run_eagerly(self._send(_PING))


class JobEventsResponse(_EventStreamResponse):
    """One job: ``id: <seq>``; ends after the terminal event."""

    __slots__ = ()
    _stream: JobStream

    def __init__(self, stream: JobStream, keepalive: Keepalive) -> None:
        super().__init__(stream, keepalive)

    async def _pump(self, send: Send) -> None:
        async for batch in self._stream.batches(direct=self._write_now):
            await self._write(send, _body([event.sse_frame for event in batch]))

    def _write_now(self, event: LiveEvent) -> asyncio.Future[None] | None:
        assert self._send is not None  # the stream only runs inside __call__
        return run_eagerly(self._send(event.sse_message))


class FeedEventsResponse(_EventStreamResponse):
    """Many jobs: ``id: <job_id>:<seq>``; never ends on its own."""

    __slots__ = ()
    _stream: FeedStream

    def __init__(self, stream: FeedStream, keepalive: Keepalive) -> None:
        super().__init__(stream, keepalive)

    async def _pump(self, send: Send) -> None:
        async for batch in self._stream.batches():
            await self._write(send, _body([event.feed_frame for event in batch]))


def _body(frames: list[bytes]) -> dict[str, Any]:
    body = frames[0] if len(frames) == 1 else b"".join(frames)
    return {"type": "http.response.body", "body": body, "more_body": True}
