"""Live progress: one LISTEN connection per process, bounded fan-out, replay-then-live streams.

``listener`` turns NOTIFYs into :class:`~bi_engine.live.events.LiveEvent` objects and hands
them to the ``hub``; the hub pushes each one into the bounded queue of every interested
subscriber; ``stream`` stitches the database replay and the live queue together without a
gap or a duplicate, which the SSE and WebSocket endpoints then write out.
"""
