"""uvicorn's WebSocket protocol, answering handshakes that are too large to parse.

uvicorn 0.54's sans-I/O protocol leaves a connection open without any answer when the
upgrade request's line or headers are too long for ``websockets`` (e.g. a URL over 8 KiB):
``websockets`` prepares its 414/431 refusal but uvicorn never writes it. Each such request
then holds a connection until the client gives up. Here the refusal is written and the
connection closed at once.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.handshake_initiated and self.conn.handshake_exc is not None:
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()
