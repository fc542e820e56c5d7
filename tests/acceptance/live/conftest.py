"""One database, ``bi-engine serve`` and ``bi-engine worker`` per module, and the event log.

One database, API server and worker per module keep the suite quick; every test works on
jobs of its own. Tests that restart the server start their own. The processes and the SSE
reader are the shared ones of ``tests.support``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from bi_engine.auth import tokens
from bi_engine.constants import API_PREFIX
from bi_engine.settings import Settings
from tests import pg
from tests.conftest import TEST_SCHEMA
from tests.support.processes import ApiServer, Process
from tests.support.processes import worker as start_worker

API = API_PREFIX


@pytest.fixture(scope="module")
def live_database_url(pg_admin_url: str, template_database: str) -> Iterator[str]:
    """One migrated database for the whole module (each test uses its own jobs)."""
    name = pg.unique_name("bi_live")
    url = pg.create_database(pg_admin_url, name, template=template_database)
    try:
        yield url
    finally:
        pg.drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def live_settings(live_database_url: str) -> Settings:
    return Settings(database_url=live_database_url, db_schema=TEST_SCHEMA)


@pytest.fixture(scope="module")
def server(live_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = ApiServer(live_database_url, tmp_path_factory.mktemp("serve")).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="module")
def worker(live_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    process = start_worker(live_database_url, log_path, "--concurrency", "4").start()
    try:
        yield process
    finally:
        process.stop()


def bearer(settings: Settings, user: str, role: str = "user") -> str:
    return tokens.mint_user_token(settings, user_id=user, email=f"{user}@x.test", role=role)


def auth(settings: Settings, user: str, role: str = "user") -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer(settings, user, role)}"}


async def submit(
    base: str, settings: Settings, user: str, data: dict[str, Any], kind: str = "test"
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        response = await http.post(
            f"{API}/analyze", json={"type": kind, "data": data}, headers=auth(settings, user)
        )
    assert response.status_code == 202, response.text
    return dict(response.json())


# --------------------------------------------------------------------------- the event log


class Log:
    """Writes jobs and events straight into the database, as a worker would."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    async def new_job(self, user: str = "alice") -> str:
        cursor = await self.conn.execute(
            "INSERT INTO analyses (user_id, type, status, started_at)"
            " VALUES (%s, 'test', 'running', now()) RETURNING id",
            (user,),
        )
        row = await cursor.fetchone()
        assert row is not None
        return str(row[0])

    async def progress(self, job: str, *percents: int, pad: int = 0) -> int:
        events = [
            {"kind": "progress", "data": {"progress": p, "step": "Analysing", "pad": "x" * pad}}
            for p in percents
        ]
        cursor = await self.conn.execute("SELECT append_events(%s, %s)", (job, Jsonb(events)))
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def finish(self, job: str) -> int:
        async with self.conn.transaction():
            await self.conn.execute(
                "UPDATE analyses SET status = 'cancelled', finished_at = now() WHERE id = %s",
                (job,),
            )
            cursor = await self.conn.execute(
                "SELECT append_events(%s, %s)", (job, Jsonb([{"kind": "cancelled", "data": {}}]))
            )
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
async def event_log(live_database_url: str) -> AsyncIterator[Log]:
    conn = await psycopg.AsyncConnection.connect(
        live_database_url, autocommit=True, options=f"-c search_path={TEST_SCHEMA},public"
    )
    async with conn:
        yield Log(conn)


async def wait_for(predicate: Any, timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def sse_gauge(http: httpx.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("bi_sse_connections "):
            return float(line.split()[1])
    raise AssertionError("bi_sse_connections is not exported")


async def listener_pid(database_url: str) -> int:
    """The backend of the API process's LISTEN connection."""
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    async with conn:
        cursor = await conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE application_name = 'bi-engine-listener' AND datname = current_database()"
        )
        rows = await cursor.fetchall()
    assert len(rows) == 1, rows
    return int(rows[0][0])


async def terminate_backend(database_url: str, pid: int) -> None:
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    async with conn:
        await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def new_id() -> str:
    return str(uuid.uuid4())
