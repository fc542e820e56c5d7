"""Following a job's SSE stream as a client: parse frames, resume after drops, stop at the end.

Used by ``bi-engine submit --follow``. A dropped connection, a server restart (the stream
ends without a terminal event) or a 5xx/429 answer leads to a reconnect with
``Last-Event-ID`` after the server's ``retry:`` hint (or ``Retry-After``), so the caller
sees every event exactly once, in order. Refusals that a retry cannot fix (400, 401, 403,
404) end the follow with :class:`FollowError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx
import orjson

from bi_engine import constants

DEFAULT_RETRY_S: Final = 2.0
MAX_OUTAGE_S: Final = 300.0
"""Give up when no connection could be (re)opened for this long."""
READ_TIMEOUT_S: Final = 60.0
"""Well above the server's 15 s heartbeat: a silent connection is a dead one."""
_FINAL_REFUSALS: Final = frozenset({400, 401, 403, 404, 410})


class FollowError(Exception):
    """The stream cannot be followed (refused, or unreachable for too long)."""


@dataclass(frozen=True, slots=True)
class ClientEvent:
    id: str | None
    kind: str
    data: Any

    @property
    def terminal(self) -> bool:
        return self.kind in constants.TERMINAL_STATUSES


class SSEParser:
    """Line-by-line ``text/event-stream`` parsing: ``id``, ``event``, ``data``, ``retry``."""

    def __init__(self) -> None:
        self.retry_s: float | None = None
        self._id: str | None = None
        self._kind = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> ClientEvent | None:
        """One line without its end; returns the event a blank line completes."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._kind = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_s = int(value) / 1000
        return None

    def _dispatch(self) -> ClientEvent | None:
        data, kind = self._data, self._kind
        self._data, self._kind = [], "message"
        if not data:
            return None
        text = "\n".join(data)
        try:
            parsed: Any = orjson.loads(text)
        except orjson.JSONDecodeError:
            parsed = text
        return ClientEvent(self._id, kind, parsed)


async def follow(
    http: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    last_event_id: str | None = None,
    on_reconnect: Callable[[str | None], None] | None = None,
    max_outage_s: float = MAX_OUTAGE_S,
) -> AsyncIterator[ClientEvent]:
    """Every event after ``last_event_id``, across reconnects, through the terminal one."""
    parser = SSEParser()
    outage_since: float | None = None
    while True:
        wait_s = parser.retry_s or DEFAULT_RETRY_S
        try:
            request_headers = {**(headers or {}), "Accept": "text/event-stream"}
            if last_event_id is not None:
                request_headers["Last-Event-ID"] = last_event_id
            async with http.stream("GET", url, headers=request_headers) as response:
                if response.status_code != 200:
                    wait_s = await _refused(response, wait_s)
                else:
                    outage_since = None
                    async for line in response.aiter_lines():
                        event = parser.feed(line)
                        if event is None:
                            continue
                        last_event_id = event.id or last_event_id
                        yield event
                        if event.terminal:
                            return
        except httpx.TransportError:
            pass  # dropped: reconnect below
        now = time.monotonic()
        outage_since = outage_since or now
        if now - outage_since > max_outage_s:
            raise FollowError(f"the event stream was unreachable for {max_outage_s:g} s")
        if on_reconnect is not None:
            on_reconnect(last_event_id)
        await asyncio.sleep(wait_s)


async def _refused(response: httpx.Response, wait_s: float) -> float:
    """Raise for refusals a retry cannot fix; else how long to wait before retrying."""
    await response.aread()
    if response.status_code in _FINAL_REFUSALS:
        raise FollowError(f"the event stream was refused: {error_message(response)}")
    retry_after = response.headers.get("retry-after", "")
    return float(retry_after) if retry_after.isdigit() else wait_s


def error_message(response: httpx.Response) -> str:
    """The contract's error envelope as one line (or the raw status)."""
    try:
        error = response.json()["error"]
        return f"{response.status_code} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.reason_phrase}"
