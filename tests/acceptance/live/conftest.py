"""Real ``bi-engine serve`` (and ``bi-engine worker``) processes, and an independent SSE reader.

One database, API server and worker per module keep the suite quick; every test works on
jobs of its own. Tests that restart the server start their own.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from psycopg.types.json import Jsonb

from bi_engine.auth import tokens
from bi_engine.constants import API_PREFIX
from bi_engine.settings import Settings
from tests import pg
from tests.conftest import TEST_SCHEMA

API = API_PREFIX


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command() -> list[str]:
    script = shutil.which("bi-engine")
    return [script] if script else [sys.executable, "-m", "bi_engine"]


@dataclass
class Process:
    """A ``bi-engine`` subprocess with its log; stopped with SIGTERM, killed if it hangs."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*_command(), *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def stop(self, timeout: float = 20) -> float:
        """SIGTERM and wait; return how long the process took to exit."""
        started = time.monotonic()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return time.monotonic() - started

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class ApiServer:
    database_url: str
    log_dir: Path
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        env = {**os.environ, "DATABASE_URL": self.database_url, "BI_DB_SCHEMA": TEST_SCHEMA}
        env |= {"LOG_LEVEL": "WARNING", "LOG_FORMAT": "console"}
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
        log_path = self.log_dir / f"serve-{self.port}.log"
        self.process = Process(args, env, log_path).start()
        self._wait_healthy()
        return self

    def stop(self) -> float:
        return self.process.stop() if self.process else 0.0

    def _wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            assert self.process.proc is not None
            if self.process.proc.poll() is not None:
                raise AssertionError(f"the API server exited:\n{self.process.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        log = self.process.log() if self.process else ""
        raise AssertionError(f"the API server did not become healthy:\n{log}")


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
    env = {**os.environ, "DATABASE_URL": live_database_url, "BI_DB_SCHEMA": TEST_SCHEMA}
    env |= {"LOG_LEVEL": "WARNING", "LOG_FORMAT": "console"}
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    process = Process(["worker", "--concurrency", "4"], env, log_path).start()
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


# --------------------------------------------------------------------------- SSE reading


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
                complete = _take_line(line, fields, reading)
                if complete and stop_after is not None and len(reading.frames) >= stop_after:
                    return reading
            reading.ended = True
            return reading

    return await asyncio.wait_for(read(), timeout)


def _take_line(line: str, fields: dict[str, str], reading: Reading) -> bool:
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
