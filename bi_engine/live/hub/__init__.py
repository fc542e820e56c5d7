"""In-process fan-out of live events to bounded per-client mailboxes."""

from bi_engine.live.hub.fanout import (
    DEFAULT_CAPACITY,
    MAX_STREAMS_PER_USER,
    STREAM_RETRY_AFTER_S,
    Hub,
    Subscription,
    TooManyStreams,
)

__all__ = [
    "DEFAULT_CAPACITY",
    "MAX_STREAMS_PER_USER",
    "STREAM_RETRY_AFTER_S",
    "Hub",
    "Subscription",
    "TooManyStreams",
]
