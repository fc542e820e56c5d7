"""The live layer of one API process: its hub, its listener, and how both start and stop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge

from bi_engine.live.hub import Hub
from bi_engine.live.keepalive import Keepalive
from bi_engine.live.listener import Listener, Reader

GAUGE_NAME = "bi_sse_connections"
START_WAIT_S = 2.0
"""How long startup waits for the first LISTEN; after that it keeps trying in the background
(streams opened meanwhile replay from the log and catch up once it connects)."""


@dataclass(frozen=True, slots=True)
class Live:
    """What the stream endpoints share: route events (hub), read the log (reader)."""

    hub: Hub
    listener: Listener
    reader: Reader
    keepalive: Keepalive


@contextlib.asynccontextmanager
async def running(
    database_url: str,
    schema: str,
    reader: Reader,
    registry: CollectorRegistry | None = None,
    *,
    hub: Hub | None = None,
) -> AsyncIterator[Live]:
    """Start the listener and the keepalive (export ``bi_sse_connections``); stop on exit."""
    hub = hub or Hub()
    listener = Listener(database_url, schema, hub, reader)
    keepalive = Keepalive(hub)
    if registry is not None:
        gauge = Gauge(GAUGE_NAME, "Open live event streams (SSE and WebSocket)", registry=registry)
        gauge.set_function(lambda: hub.subscriber_count)
    await listener.start(wait_s=START_WAIT_S)
    keepalive.start()
    try:
        yield Live(hub=hub, listener=listener, reader=reader, keepalive=keepalive)
    finally:
        await keepalive.stop()
        await listener.stop()
        if registry is not None:
            registry.unregister(gauge)
