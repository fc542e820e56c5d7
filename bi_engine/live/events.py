"""One event of a job's log as the live layer carries it, encoded once for every client.

The SSE frame, the dashboard-feed frame and the WebSocket text of an event are computed the
first time a client needs them and then shared by all clients, so fan-out to N clients
costs one encoding, not N.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from bi_engine import constants


class PayloadError(ValueError):
    """The NOTIFY payload is not one the engine's trigger writes."""


@dataclass(slots=True, eq=False)
class LiveEvent:
    """``seq`` counts from 1 per job; ``user_id`` is the job's owner (for feed filtering)."""

    job_id: str
    seq: int
    kind: str
    data: dict[str, Any]
    user_id: str
    at: str = ""
    terminal: bool = field(init=False)
    """``completed``, ``failed`` or ``cancelled``: the stream ends with it."""
    _sse: bytes | None = field(default=None, repr=False)
    _feed: bytes | None = field(default=None, repr=False)
    _ws: str | None = field(default=None, repr=False)
    _sse_message: dict[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.terminal = self.kind in constants.TERMINAL_STATUSES

    @property
    def sse_frame(self) -> bytes:
        """``id: <seq>``, ``event: <kind>``, ``data: <json>`` (CONTRACT section 6)."""
        if self._sse is None:
            self._sse = b"id: %d\nevent: %s\ndata: %s\n\n" % (
                self.seq,
                self.kind.encode(),
                orjson.dumps(self.data),
            )
        return self._sse

    @property
    def sse_message(self) -> dict[str, Any]:
        """The ASGI body message carrying :attr:`sse_frame`, shared by every client."""
        if self._sse_message is None:
            self._sse_message = {
                "type": "http.response.body",
                "body": self.sse_frame,
                "more_body": True,
            }
        return self._sse_message

    @property
    def feed_frame(self) -> bytes:
        """The dashboard feed: ``id: <job_id>:<seq>``, data carries ``job_id`` and ``seq``."""
        if self._feed is None:
            self._feed = b"id: %s\nevent: %s\ndata: %s\n\n" % (
                feed_id(self.job_id, self.seq).encode(),
                self.kind.encode(),
                orjson.dumps({**self.data, "job_id": self.job_id, "seq": self.seq}),
            )
        return self._feed

    @property
    def ws_text(self) -> str:
        """One WebSocket message: ``{"job_id", "seq", "kind", "data"}``."""
        if self._ws is None:
            message = {"job_id": self.job_id, "seq": self.seq, "kind": self.kind, "data": self.data}
            self._ws = orjson.dumps(message).decode()
        return self._ws


@dataclass(frozen=True, slots=True)
class EventRef:
    """A NOTIFY too large to carry its events: read ``first_seq..last_seq`` back."""

    job_id: str
    user_id: str
    first_seq: int
    last_seq: int


def feed_id(job_id: str, seq: int) -> str:
    return f"{job_id}:{seq}"


def parse_payload(payload: str | bytes) -> tuple[list[LiveEvent], list[EventRef]]:
    """Decode the trigger's ``{"v":1,"events":[...]}`` or ``{"v":1,"refs":[...]}``."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(str(exc)) from exc
    if not isinstance(body, dict) or body.get("v") != 1:
        raise PayloadError("unknown payload version")
    try:
        events = [_event(item) for item in body.get("events") or ()]
        refs = [_ref(item) for item in body.get("refs") or ()]
    except (KeyError, TypeError, ValueError) as exc:
        raise PayloadError(f"malformed payload: {exc}") from exc
    return events, refs


def from_row(row: Mapping[str, Any], user_id: str) -> LiveEvent:
    """An ``analysis_events`` row (replay, catch-up) as a live event."""
    created = row.get("created_at")
    return LiveEvent(
        job_id=str(row["job_id"]),
        seq=int(row["seq"]),
        kind=str(row["kind"]),
        data=dict(row.get("data") or {}),
        user_id=str(row.get("user_id") or user_id),
        at=created.isoformat() if isinstance(created, datetime) else str(created or ""),
    )


def _event(item: Mapping[str, Any]) -> LiveEvent:
    data = item.get("data") or {}
    if not isinstance(data, dict):
        raise TypeError("event data must be an object")
    return LiveEvent(
        job_id=str(item["job_id"]),
        seq=int(item["seq"]),
        kind=str(item["kind"]),
        data=data,
        user_id=str(item["user_id"]),
        at=str(item.get("at") or ""),
    )


def _ref(item: Mapping[str, Any]) -> EventRef:
    return EventRef(
        job_id=str(item["job_id"]),
        user_id=str(item["user_id"]),
        first_seq=int(item["first_seq"]),
        last_seq=int(item["last_seq"]),
    )
