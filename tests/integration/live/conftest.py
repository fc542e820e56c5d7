"""Fixtures of the live layer: a writer that appends events, a hub with its listener."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from bi_engine.db import connection as db_connection
from bi_engine.db import events as event_log
from bi_engine.live.hub import Hub
from bi_engine.live.listener import Listener, dedicated_reader
from tests.conftest import TEST_SCHEMA


class Writer:
    """Creates analyses and appends their events, each call its own transaction."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    async def new_job(self, user_id: str = "u1") -> str:
        cursor = await self.conn.execute(
            "INSERT INTO analyses (user_id, type) VALUES (%s, 'test') RETURNING id", (user_id,)
        )
        row = await cursor.fetchone()
        assert row is not None
        return str(row["id"])

    async def progress(self, job_id: str, *percents: int) -> int:
        events = [{"kind": "progress", "data": {"progress": p, "step": f"s{p}"}} for p in percents]
        return await event_log.append(self.conn, job_id, events)

    async def append(self, job_id: str, kind: str, data: dict[str, Any] | None = None) -> int:
        return await event_log.append(self.conn, job_id, [{"kind": kind, "data": data or {}}])

    async def finish(self, job_id: str) -> int:
        await self.conn.execute(
            "UPDATE analyses SET status = 'cancelled', finished_at = now() WHERE id = %s",
            (job_id,),
        )
        return await self.append(job_id, "cancelled", {"reason": "test"})


@pytest.fixture
async def writer(database_url: str) -> AsyncIterator[Writer]:
    conn = await db_connection.connect(database_url, TEST_SCHEMA)
    async with conn:
        yield Writer(conn)


@pytest.fixture
def hub() -> Hub:
    return Hub()


@pytest.fixture
async def listener(database_url: str, hub: Hub) -> AsyncIterator[Listener]:
    listener = Listener(database_url, TEST_SCHEMA, hub, dedicated_reader(database_url, TEST_SCHEMA))
    await listener.start()
    assert listener.connected
    try:
        yield listener
    finally:
        await listener.stop()


async def terminate(database_url: str, pid: int) -> None:
    """Kill one backend, as a failover or an idle-connection reaper would."""
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    async with conn:
        await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def new_uuid() -> str:
    return str(uuid.uuid4())
