"""Server-Sent Events over sse-starlette with frames encoded once, before the response.

The endpoint hands in an async iterator of pre-encoded frames (``bytes``), which
sse-starlette writes as they are; it adds the heartbeat comment and the disconnect and
shutdown handling. ``on_close`` runs however the response ends, so a stream's hub slot is
released even when the client vanishes before the first byte.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Final

from sse_starlette.sse import EventSourceResponse
from starlette.types import Receive, Scope, Send

from bi_engine.live.events import LiveEvent

PING_S: Final = 15
RETRY_MS: Final = 2000
RETRY_FRAME: Final = b"retry: %d\n\n" % RETRY_MS
"""Tells EventSource how soon to reconnect after a drop."""


class LiveEventSourceResponse(EventSourceResponse):
    """``EventSourceResponse`` that always runs ``on_close`` when it is done."""

    def __init__(self, frames: AsyncIterable[bytes], *, on_close: Callable[[], None]) -> None:
        super().__init__(frames, ping=PING_S, sep="\n")
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


async def job_frames(batches: AsyncIterator[list[LiveEvent]]) -> AsyncIterator[bytes]:
    """``retry:`` first, then one write per batch of already-encoded ``id: <seq>`` frames."""
    yield RETRY_FRAME
    async for batch in batches:
        yield _join([event.sse_frame for event in batch])


async def feed_frames(batches: AsyncIterator[list[LiveEvent]]) -> AsyncIterator[bytes]:
    """Like :func:`job_frames` with ``id: <job_id>:<seq>`` frames."""
    yield RETRY_FRAME
    async for batch in batches:
        yield _join([event.feed_frame for event in batch])


def _join(frames: list[bytes]) -> bytes:
    return frames[0] if len(frames) == 1 else b"".join(frames)
