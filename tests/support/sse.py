"""An independent SSE reader: frames, comments, the retry hint, and whether the server ended it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson


@dataclass
class Frame:
    id: str | None
    event: str
    data: Any


@dataclass
class Reading:
    """What one SSE connection delivered."""

    status: int
    frames: list[Frame] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    ended: bool = False
    """The server closed the stream (as opposed to the reader stopping)."""

    @property
    def ids(self) -> list[int]:
        return [int(frame.id) for frame in self.frames if frame.id is not None]


async def read_sse(
    http: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    stop_after: int | None = None,
    timeout: float = 30,
) -> Reading:
    """Read an SSE response until the server ends it (or ``stop_after`` frames)."""

    async def read() -> Reading:
        async with http.stream("GET", url, headers=headers) as response:
            reading = Reading(response.status_code)
            if response.status_code != 200:
                await response.aread()
                reading.frames.append(Frame(None, "error", response.json()))
                return reading
            if stop_after == 0:
                return reading
            fields: dict[str, str] = {}
            async for line in response.aiter_lines():
                complete = take_line(line, fields, reading)
                if complete and stop_after is not None and len(reading.frames) >= stop_after:
                    return reading
            reading.ended = True
            return reading

    return await asyncio.wait_for(read(), timeout)


def take_line(line: str, fields: dict[str, str], reading: Reading) -> bool:
    """Feed one line; return True when it completed a frame."""
    if line.startswith(":"):
        reading.comments.append(line)
        return False
    if line:
        name, _, value = line.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value
        return False
    if "retry" in fields:
        reading.retry = int(fields.pop("retry"))
    if "data" not in fields:
        fields.clear()
        return False
    reading.frames.append(
        Frame(fields.get("id"), fields.get("event", "message"), orjson.loads(fields["data"]))
    )
    fields.clear()
    return True
