"""A finished job's callback leaves from the worker: queued with the terminal state, signed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import procrastinate
import psycopg
import pytest

from bi_engine.settings import Settings
from bi_engine.webhooks import signing
from tests.acceptance.workers.conftest import WorkerProcess
from tests.integration.workers import support

pytestmark = pytest.mark.acceptance
SECRET = "worker-callback-secret"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"headers": dict(self.headers), "body": body})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/bi", received
    finally:
        server.shutdown()
        server.server_close()


async def test_completion_and_failure_are_called_back(
    conn: psycopg.AsyncConnection[Any],
    app: procrastinate.App,
    settings: Settings,
    start_worker: Any,
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = receiver
    done = await support.submit_job(conn, app, settings, callback_url=url)
    bad = await support.submit_job(conn, app, settings, callback_url=url, data={"sleep_s": "x"})
    worker: WorkerProcess = start_worker(
        "--concurrency",
        "2",
        env={"BI_CALLBACK_SECRET": SECRET, "BI_CALLBACK_ALLOWED_HOSTS": "127.0.0.1"},
    )

    async def both_called() -> bool:
        return len(received) >= 2

    await support.wait_until(both_called, timeout=30, what="two callbacks")
    bodies = {orjson.loads(r["body"])["job_id"]: r for r in received}
    assert set(bodies) == {str(done), str(bad)}
    for request in received:
        header = request["headers"]["X-BI-Signature"]
        assert signing.verify(SECRET, request["body"], header)
    assert orjson.loads(bodies[str(done)]["body"])["event"] == "completed"
    failed = orjson.loads(bodies[str(bad)]["body"])
    assert (failed["event"], failed["error"]["code"]) == ("failed", "invalid_data")
    assert worker.proc.poll() is None
