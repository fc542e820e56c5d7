"""Real ``bi-engine serve`` and ``bi-engine worker`` processes on the test's database.

Every process a test starts is stopped (SIGTERM, then SIGKILL) when the test ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bi_engine.auth import tokens
from bi_engine.settings import Settings
from tests.conftest import TEST_SCHEMA


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command() -> list[str]:
    script = shutil.which("bi-engine")
    return [script] if script else [sys.executable, "-m", "bi_engine"]


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def wait_for(self, path: str, timeout: float = 30) -> None:
        """Until ``path`` answers 200 (the process is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the process exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}{path}", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{path} never answered 200:\n{self.log()}")


Starter = Callable[..., Process]


@pytest.fixture
def start(database_url: str, tmp_path: Path) -> Iterator[Starter]:
    """``start("serve")`` / ``start("worker", env={...})``: a bi-engine process on this test's
    database, its output in a log file; serve waits for /health."""
    started: list[Process] = []

    def launch(command: str, *args: str, env: dict[str, str] | None = None) -> Process:
        port = free_port()
        environ = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BI_DB_SCHEMA": TEST_SCHEMA,
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
            **(env or {}),
        }
        if command == "serve":
            args = ("--host", "127.0.0.1", "--port", str(port), *args)
        else:
            environ.setdefault("BI_WORKER_METRICS_PORT", str(port))
            port = int(environ["BI_WORKER_METRICS_PORT"])
        log_path = tmp_path / f"{command}-{len(started)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [*_command(), command, *args], env=environ, stdout=log, stderr=subprocess.STDOUT
            )
        process = Process(proc, log_path, port)
        started.append(process)
        if command == "serve":
            process.wait_for("/health")
        return process

    try:
        yield launch
    finally:
        for process in started:
            process.stop()


def auth(settings: Settings, user: str = "alice", role: str = "user") -> dict[str, str]:
    token = tokens.mint_user_token(settings, user_id=user, email=f"{user}@x.test", role=role)
    return {"Authorization": f"Bearer {token}"}
