"""One task per process instead of two per stream: heartbeats, and ending streams at shutdown.

Every ``PING_S`` seconds each idle SSE stream gets the same pre-built comment frame (proxies
close silent connections). Every ``POLL_S`` seconds the task also looks whether the server
is shutting down (sse-starlette's ``AppStatus``, which hooks uvicorn's signal handler, or
uvicorn's own ``should_exit``): if so it ends every stream, so clients reconnect — with
``Last-Event-ID`` — to the next server instead of holding this one open until it is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from typing import Final

import structlog
from sse_starlette.sse import AppStatus

from bi_engine.live.hub import Hub

PING_S: Final = 15.0
POLL_S: Final = 0.5

Pinger = Callable[[], None]
log = structlog.get_logger("bi_engine.live.keepalive")


def server_is_stopping() -> bool:
    """uvicorn received SIGTERM/SIGINT (through sse-starlette's hook, or its own flag)."""
    if AppStatus.should_exit:
        return True
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return bool(getattr(server, "should_exit", False))


class Keepalive:
    """Pings registered streams; closes every stream of ``hub`` when the server stops."""

    def __init__(self, hub: Hub, *, ping_s: float = PING_S, poll_s: float = POLL_S) -> None:
        self._hub = hub
        self._ping_s = ping_s
        self._poll_s = poll_s
        self._pingers: set[Pinger] = set()
        self._task: asyncio.Task[None] | None = None
        self.stopping = False

    def add(self, pinger: Pinger) -> None:
        self._pingers.add(pinger)

    def discard(self, pinger: Pinger) -> None:
        self._pingers.discard(pinger)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="bi-live-keepalive")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def ping_all(self) -> None:
        for pinger in tuple(self._pingers):
            pinger()

    def end_all(self) -> None:
        """Close every stream now (they end their responses; clients reconnect)."""
        self.stopping = True
        closed = self._hub.close_all()
        log.info("live.streams_ended_for_shutdown", streams=closed)

    async def _run(self) -> None:
        next_ping = time.monotonic() + self._ping_s
        while True:
            await asyncio.sleep(self._poll_s)
            if not self.stopping and server_is_stopping():
                self.end_all()
            if time.monotonic() >= next_ping:
                next_ping += self._ping_s
                self.ping_all()
