"""A real engine for the front-end suites: ``bi-engine serve`` and ``bi-engine worker``
subprocesses on one database, and a plain static HTTP server standing for another origin."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bi_engine.auth import tokens
from bi_engine.settings import Settings

START_TIMEOUT_S = 60.0
ENGINE_ENV = {
    "BI_DB_SCHEMA": "bi",
    "BI_LLM_CHAIN": "pattern",
    "BI_JOB_TIMEOUT_S": "120",
    "LOG_LEVEL": "WARNING",
    "LOG_FORMAT": "json",
    "ENVIRONMENT": "development",
    "BI_RATE_LIMITS": "false",  # a test user submits more than 10 analyses a minute
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command() -> list[str]:
    script = shutil.which("bi-engine")
    return [script] if script else [sys.executable, "-m", "bi_engine"]


@dataclass
class Engine:
    """The API at :attr:`url` and one worker, both logging to files under ``log_dir``."""

    database_url: str
    log_dir: Path
    cors_origins: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def settings(self) -> Settings:
        return Settings(database_url=self.database_url, db_schema="bi")

    def token(self, user_id: str, role: str = "user") -> str:
        return tokens.mint_user_token(
            self.settings, user_id=user_id, email=f"{user_id}@example.test", role=role
        )

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env.update(ENGINE_ENV, DATABASE_URL=self.database_url)
        env["BI_CORS_ORIGINS"] = ",".join(self.cors_origins)
        return env

    def _spawn(self, name: str, *args: str) -> None:
        with (self.log_dir / f"{name}.log").open("wb") as log:
            self.processes.append(
                subprocess.Popen(
                    [*_command(), *args],
                    env=self.environment(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    def start(self) -> None:
        self._spawn("serve", "serve", "--host", "127.0.0.1", "--port", str(self.port))
        self._spawn("worker", "worker", "--concurrency", "2")
        self._wait_healthy()
        self._wait_worker()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"bi-engine serve did not become healthy\n{self.logs()}")

    def _wait_worker(self) -> None:
        """Ready when a smoke-test job completes: the worker has claimed and run it."""
        headers = {"Authorization": f"Bearer {self.token('engine-warmup')}"}
        body = {"type": "test", "data": {}}
        job = httpx.post(
            f"{self.url}/api/business-intelligence/analyze", json=body, headers=headers
        )
        status_url = f"{self.url}{job.json()['status_url']}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive()
            if httpx.get(status_url, headers=headers).json()["status"] == "completed":
                return
            time.sleep(0.3)
        raise TimeoutError(f"the worker did not run a smoke test\n{self.logs()}")

    def _check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited {process.returncode}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.processes.clear()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


@contextlib.contextmanager
def static_site(root: Path, port: int) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1:``port`` (another origin than the engine's)."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
