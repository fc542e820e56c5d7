"""``WS /ws/jobs/{job_id}``: the job's events as JSON messages, the same resume rule as SSE.

Each message is ``{"job_id", "seq", "kind", "data"}``. The resume point comes from
``?last_event_id=`` or, failing that, from the client's first message ``{"last_seq": n}``
(``0`` for the whole log). The socket is closed (1000) after the terminal event. Refusals
before the handshake (401, 404, 429) are HTTP responses with the error envelope when the
server supports denial responses, else a close with code 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from bi_engine.api.endpoints.events import last_event_id, open_job_stream, parse_seq
from bi_engine.api.errors import from_bi_error
from bi_engine.errors import BIError
from bi_engine.live.eager import run_eagerly
from bi_engine.live.events import LiveEvent
from bi_engine.live.stream import JobStream

FIRST_MESSAGE_TIMEOUT_S: Final = 10.0
CLOSE_NORMAL: Final = 1000
CLOSE_RESTARTING: Final = 1012
"""The server is shutting down: reconnect (with ``?last_event_id=``) to the next one."""
CLOSE_POLICY: Final = 1008
CLOSE_BAD_RESUME: Final = 4400
"""The first message is not ``{"last_seq": n}`` with a seq of this job's log."""
CLOSE_NO_RESUME: Final = 4408
"""No first message within ``FIRST_MESSAGE_TIMEOUT_S``."""


async def job_socket(websocket: WebSocket) -> None:
    from_query = last_event_id(websocket)
    try:
        stream = await open_job_stream(websocket, from_query)
    except BIError as exc:
        await _deny(websocket, exc)
        return
    try:
        await websocket.accept()
        if from_query is None and not await _resume_from_first_message(websocket, stream):
            return
        await _pump(websocket, stream)
    finally:
        stream.close()


async def _deny(websocket: WebSocket, exc: BIError) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(from_bi_error(exc))
    else:
        await websocket.close(code=CLOSE_POLICY, reason=exc.code)


async def _resume_from_first_message(websocket: WebSocket, stream: JobStream) -> bool:
    try:
        text = await asyncio.wait_for(websocket.receive_text(), FIRST_MESSAGE_TIMEOUT_S)
    except TimeoutError:
        await websocket.close(code=CLOSE_NO_RESUME, reason='send {"last_seq": n} first')
        return False
    except (WebSocketDisconnect, RuntimeError, KeyError):
        return False
    try:
        stream.resume_after(parse_seq(_last_seq(text)))
    except (BIError, ValueError):
        await websocket.close(code=CLOSE_BAD_RESUME, reason="invalid last_seq")
        return False
    return True


def _last_seq(text: str) -> Any:
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return message.get("last_seq", text) if isinstance(message, dict) else text


async def _pump(websocket: WebSocket, stream: JobStream) -> None:
    """Send until the terminal event; stop at once when the client goes away."""
    watcher = asyncio.create_task(_until_disconnect(websocket))
    sender = asyncio.create_task(_send_all(websocket, stream))
    try:
        await asyncio.wait({watcher, sender}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (watcher, sender):
            task.cancel()
        for task in (watcher, sender):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, OSError):
                await task


async def _send_all(websocket: WebSocket, stream: JobStream) -> None:
    def write_now(event: LiveEvent) -> asyncio.Future[None] | None:
        return run_eagerly(websocket.send({"type": "websocket.send", "text": event.ws_text}))

    async for batch in stream.batches(direct=write_now):
        for event in batch:
            await websocket.send_text(event.ws_text)
    await websocket.close(code=CLOSE_NORMAL if stream.complete else CLOSE_RESTARTING)


async def _until_disconnect(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
