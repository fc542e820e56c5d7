"""Real ``bi-engine worker`` processes on the test's database; every one stopped at teardown."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import procrastinate
import psycopg
import pytest

from bi_engine import queue
from bi_engine.db import connection
from bi_engine.settings import Settings

# Low thresholds so that recovery, promotion and heartbeats happen within a test.
FAST_ENV = {
    "BI_STALLED_AFTER_S": "2",
    "BI_STARVATION_AFTER_S": "300",
    "BI_JOB_TIMEOUT_S": "60",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "json",
}


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
                self.proc.wait(5)


def _command() -> list[str]:
    script = shutil.which("bi-engine")
    return [script] if script else [sys.executable, "-m", "bi_engine"]


@pytest.fixture
def start_worker(database_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``bi-engine worker`` with the given CLI arguments and extra environment."""
    started: list[WorkerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started)}.log"
        environ = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BI_DB_SCHEMA": "bi",
            **FAST_ENV,
            **(env or {}),
        }
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [*_command(), "worker", *args], env=environ, stdout=log, stderr=subprocess.STDOUT
            )
        worker = WorkerProcess(proc, log_path)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
async def conn(settings: Settings) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    db = await connection.connect(settings.require_database_url(), settings.db_schema)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def app(settings: Settings) -> procrastinate.App:
    """The API's App: defers by task name, knows no worker code."""
    return queue.make_app(settings.require_database_url(), settings.db_schema)


async def live_workers(conn: psycopg.AsyncConnection[Any]) -> int:
    cursor = await conn.execute(
        "SELECT count(*) AS n FROM procrastinate_workers"
        " WHERE last_heartbeat > now() - interval '5 seconds'"
    )
    found = await cursor.fetchone()
    return int(found["n"]) if found else 0
