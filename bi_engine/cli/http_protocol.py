"""uvicorn's httptools protocol with a lingering close, so a refused upload sees its answer.

When the API refuses a request whose body is still arriving (413 mid-body, 408, 431, 400),
uvicorn closes the socket with the client's data unread. The kernel then answers with a
reset, and a client that is still writing gets ``ECONNRESET`` on its next write and drops
the 413 it never read. Like nginx's ``lingering_close``, this protocol half-closes instead
(the answer and a FIN go out), reads and discards what the client still sends, and closes
once the client stops: at its EOF, after ``LINGER_IDLE_S`` without data, or after
``LINGER_TOTAL_S`` in all. Connections closed with nothing left to read close at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LINGER_IDLE_S = 2.0
LINGER_TOTAL_S = 10.0


class LingeringTransport(asyncio.Transport):
    """The connection's transport, except that ``close`` lingers while the client sends."""

    def __init__(
        self,
        transport: asyncio.Transport,
        client_still_sending: Callable[[], bool],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__()
        self._inner = transport
        self._client_still_sending = client_still_sending
        self._loop = loop
        self.lingering = False
        self._last_data = 0.0
        self._give_up_at = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # -- closing ---------------------------------------------------------------------------
    def close(self) -> None:
        if self.lingering or self._inner.is_closing():
            return
        if not (self._client_still_sending() and self._inner.can_write_eof()):
            self._inner.close()
            return
        try:
            self._inner.write_eof()  # the answer goes out, then a FIN; reading goes on
            self._inner.resume_reading()
        except (OSError, RuntimeError):
            self._inner.close()
            return
        self.lingering = True
        now = self._loop.time()
        self._last_data = now
        self._give_up_at = now + LINGER_TOTAL_S
        self._timer = self._loop.call_later(LINGER_IDLE_S, self._check)

    def discard(self) -> None:
        """Data arrived while lingering: it is dropped, and the idle clock starts again."""
        self._last_data = self._loop.time()

    def finish(self) -> None:
        """Close for good: the client sent EOF, went quiet, or lingered too long."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.close()

    def _check(self) -> None:
        now = self._loop.time()
        wake = min(self._last_data + LINGER_IDLE_S, self._give_up_at)
        if now >= wake or self._inner.is_closing():
            self.finish()
        else:
            self._timer = self._loop.call_later(wake - now, self._check)

    def is_closing(self) -> bool:
        return self.lingering or self._inner.is_closing()

    def abort(self) -> None:
        self.lingering = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.abort()

    # -- everything else goes to the real transport ----------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._inner.write(data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self._inner.writelines(list_of_data)

    def write_eof(self) -> None:
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def pause_reading(self) -> None:
        if not self.lingering:
            self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)


class LingeringHttpProtocol(HttpToolsProtocol):
    """httptools HTTP/1.1 whose closes linger while the request body is still coming."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(
            LingeringTransport(transport, self._client_still_sending, self.loop)
        )

    def _client_still_sending(self) -> bool:
        cycle = self.cycle
        return cycle is not None and cycle.more_body and not cycle.disconnected

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if isinstance(transport, LingeringTransport) and transport.lingering:
            transport.discard()
            return
        super().data_received(data)

    def eof_received(self) -> None:
        transport = self.transport
        if isinstance(transport, LingeringTransport) and transport.lingering:
            transport.finish()
