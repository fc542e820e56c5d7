"""Callback delivery to a real local HTTP receiver: signed, recorded, retried, dead-lettered."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest

from bi_engine import queue
from bi_engine.db import connection
from bi_engine.settings import Settings
from bi_engine.webhooks import enqueue, signing
from workers import callbacks

pytestmark = pytest.mark.integration
SECRET = "callback-secret-for-tests"


class Receiver:
    """A real HTTP server on 127.0.0.1 answering with scripted status codes."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/bi"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def callback_settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, callback_secret=SECRET, callback_allowed_hosts="127.0.0.1"
    )


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    c = await connection.connect(database_url, "bi")
    yield c
    await c.close()


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Any]:
    procrastinate_app = queue.make_app(database_url, "bi")
    async with procrastinate_app.open_async():
        yield procrastinate_app


async def finished_job(conn: psycopg.AsyncConnection[Any], url: str) -> uuid.UUID:
    cursor = await conn.execute(
        "INSERT INTO analyses (user_id, type, status, callback_url, result, started_at,"
        " finished_at) VALUES ('u1', 'test', 'completed', %s,"
        ' \'{"analysis": {"summary": {"headline": "All good"}}}\', now(), now())'
        " RETURNING id",
        (url,),
    )
    row = await cursor.fetchone()
    assert row is not None
    return uuid.UUID(str(row["id"]))


async def next_attempts(conn: psycopg.AsyncConnection[Any]) -> list[dict[str, Any]]:
    cursor = await conn.execute(
        "SELECT args, scheduled_at > now() AS later FROM procrastinate_jobs"
        " WHERE task_name = 'bi.deliver_callback' ORDER BY id"
    )
    return [dict(r) for r in await cursor.fetchall()]


async def test_delivered_and_signed(
    receiver: Receiver, callback_settings: Settings, conn, app
) -> None:
    job = await finished_job(conn, receiver.url)
    outcome = await callbacks.deliver(callback_settings, app, conn, job, "completed", 1)
    assert outcome.status == "delivered"
    (request,) = receiver.requests
    assert signing.verify(SECRET, request["body"], request["headers"][signing.HEADER])
    body = json.loads(request["body"])
    assert body["job_id"] == str(job)
    assert body["event"] == "completed"
    assert body["headline"] == "All good"
    assert body["result_url"].endswith(f"/jobs/{job}/result")
    (row,) = await callbacks.webhook_rows.attempts(conn, job)
    assert (row["status"], row["http_status"], row["attempt"]) == ("delivered", 200, 1)
    assert await next_attempts(conn) == []


async def test_failure_is_recorded_and_retried_later(
    receiver: Receiver, callback_settings: Settings, conn, app
) -> None:
    receiver.statuses = [500]
    job = await finished_job(conn, receiver.url)
    outcome = await callbacks.deliver(callback_settings, app, conn, job, "completed", 1)
    assert (outcome.status, outcome.http_status) == ("failed", 500)
    (row,) = await callbacks.webhook_rows.attempts(conn, job)
    assert row["status"] == "failed"
    assert row["next_attempt_at"] is not None
    (retry,) = await next_attempts(conn)
    assert retry["args"] == {"job_id": str(job), "event": "completed", "attempt": 2}
    assert retry["later"] is True


async def test_last_attempt_becomes_dead_letter_and_replays(
    receiver: Receiver, callback_settings: Settings, conn, app
) -> None:
    receiver.statuses = [503]
    job = await finished_job(conn, receiver.url)
    outcome = await callbacks.deliver(
        callback_settings, app, conn, job, "failed", callbacks.MAX_ATTEMPTS
    )
    assert outcome.status == "dead_letter"
    assert await next_attempts(conn) == []
    assert await enqueue.replay_dead_letters(app, conn) == 1
    (replayed,) = await next_attempts(conn)
    assert replayed["args"]["attempt"] == callbacks.MAX_ATTEMPTS + 1


async def test_metadata_target_is_refused_without_a_request(
    receiver: Receiver, callback_settings: Settings, conn, app
) -> None:
    job = await finished_job(conn, "http://169.254.169.254/latest/meta-data/")
    outcome = await callbacks.deliver(callback_settings, app, conn, job, "completed", 1)
    assert outcome.status == "dead_letter"
    assert "metadata" in (outcome.error or "")
    assert receiver.requests == []


async def test_loopback_refused_unless_allow_listed(
    receiver: Receiver, database_url: str, conn, app
) -> None:
    strict = Settings(database_url=database_url, callback_secret=SECRET)
    job = await finished_job(conn, receiver.url)
    outcome = await callbacks.deliver(strict, app, conn, job, "completed", 1)
    assert outcome.status == "dead_letter"
    assert receiver.requests == []


def test_backoff_grows_and_is_capped() -> None:
    import random

    rng = random.Random(7)
    delays = [callbacks.backoff_s(n, rng) for n in range(1, 12)]
    assert 1.0 <= delays[0] <= 2.0
    assert 4.0 <= delays[2] <= 8.0
    assert max(delays) <= callbacks.MAX_DELAY_S
