"""Run a coroutine synchronously until it first has to wait (what Python 3.12's eager tasks do).

Writing one frame to a client (an ASGI ``send``) almost always completes without waiting:
the server writes to the socket at once unless the client's buffers are full. Running it
eagerly from the publisher skips a task wake-up per client per event, which is most of the
fan-out cost after the socket write itself. When the write does have to wait (a slow
client), the rest of it continues in a task and the caller gets that task back.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Coroutine
from typing import Any


def run_eagerly(awaitable: Awaitable[None]) -> asyncio.Future[None] | None:
    """``None`` if ``awaitable`` completed right away, else the task that finishes it."""
    if not isinstance(awaitable, types.CoroutineType):  # the exact type: a cheap check
        return asyncio.ensure_future(awaitable)
    coro: Coroutine[Any, Any, None] = awaitable
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    except BaseException:
        coro.close()
        raise
    return asyncio.ensure_future(_finish(coro, waiting_on))


async def _finish(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Drive ``coro`` like a task does: wait for what it yielded, then resume it."""
    while True:
        try:
            if waiting_on is None:
                await asyncio.sleep(0)
            else:
                waiting_on._asyncio_future_blocking = False
                await asyncio.wait({waiting_on})
        except BaseException as exc:  # cancelled while waiting: let the coroutine clean up
            try:
                waiting_on = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return
