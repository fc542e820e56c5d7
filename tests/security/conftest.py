"""One real ``bi-engine serve`` and one ``bi-engine worker`` per module, on a database of its own.

Callbacks may go to 127.0.0.1 (allow-listed, for the local hook servers the tests start);
every other loopback, private, link-local or metadata target must be refused. Rate limits
are off: the attacks here are many requests from few users.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from bi_engine.settings import Settings
from tests import pg
from tests.conftest import TEST_SCHEMA
from tests.support import figures, jobs
from tests.support.processes import ApiServer, Process, worker

ALLOWED_HOSTS = "127.0.0.1"
ENV = {
    "BI_RATE_LIMITS": "false",
    "BI_CALLBACK_ALLOWED_HOSTS": ALLOWED_HOSTS,
    "BI_STALLED_AFTER_S": "5",
}


@pytest.fixture(scope="module")
def sec_database_url(pg_admin_url: str, template_database: str) -> Iterator[str]:
    name = pg.unique_name("bi_sec")
    url = pg.create_database(pg_admin_url, name, template=template_database)
    try:
        yield url
    finally:
        pg.drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def sec_settings(sec_database_url: str) -> Settings:
    return Settings(database_url=sec_database_url, db_schema=TEST_SCHEMA)


@pytest.fixture(scope="module")
def server(sec_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = ApiServer(sec_database_url, tmp_path_factory.mktemp("serve"), dict(ENV)).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="module")
def sec_worker(
    sec_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Process]:
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    process = worker(sec_database_url, log_path, "--concurrency", "4", **ENV).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def http(server: ApiServer) -> Any:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def auth(sec_settings: Settings) -> Callable[..., dict[str, str]]:
    def headers(user: str = "alice", role: str = "user") -> dict[str, str]:
        return jobs.auth(sec_settings, user, role)

    return headers


def wait_until(predicate: Callable[[], Any], timeout: float = 30, what: str = "it") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


# --------------------------------------------------------------------------- hook servers


@dataclass
class HookServer:
    """A loopback HTTP server that records every request and answers as told."""

    status: int = 200
    location: str | None = None
    hits: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def start(self) -> HookServer:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                hook.hits.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(hook.status)
                if hook.location:
                    self.send_header("Location", hook.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def hook_server() -> Iterator[Callable[..., HookServer]]:
    started: list[HookServer] = []

    def start(**kwargs: Any) -> HookServer:
        hook = HookServer(**kwargs).start()
        started.append(hook)
        return hook

    try:
        yield start
    finally:
        for hook in started:
            hook.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    figures.summarize("security", terminalreporter)
