"""Real ``bi-engine serve`` and ``bi-engine worker`` subprocesses, each with its own log file.

Every process is started with an explicit environment (the test's database, schema, fast
thresholds) and stopped with SIGTERM, then SIGKILL if it hangs. ``ProcessGroup`` stops
everything it started, so a failing test never leaves a process behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SCHEMA = "bi"
QUIET_ENV = {"LOG_LEVEL": "WARNING", "LOG_FORMAT": "console"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command() -> list[str]:
    script = shutil.which("bi-engine")
    return [script] if script else [sys.executable, "-m", "bi_engine"]


def engine_env(database_url: str, **extra: str) -> dict[str, str]:
    """The process environment: this test's database, quiet logs, then ``extra``."""
    base = {"DATABASE_URL": database_url, "BI_DB_SCHEMA": SCHEMA}
    return {**os.environ, **base, **QUIET_ENV, **extra}


@dataclass
class Process:
    """A ``bi-engine`` subprocess; its output goes to ``log_path`` (appended on restart)."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*command(), *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would, and reap it."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> float:
        """SIGTERM and wait (SIGKILL after ``timeout``); how long it took to exit."""
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
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class ApiServer:
    """``bi-engine serve`` on a free loopback port."""

    database_url: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait_healthy: bool = True) -> ApiServer:
        env = engine_env(self.database_url, **self.extra_env)
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = Process(args, env, self.log_dir / f"serve-{self.port}.log").start()
        if wait_healthy:
            self.wait_healthy()
        return self

    def stop(self) -> float:
        return self.process.stop() if self.process else 0.0

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if not self.process.alive():
                raise AssertionError(f"the API server exited:\n{self.process.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        log = self.process.log() if self.process else ""
        raise AssertionError(f"the API server did not become healthy:\n{log}")


def worker(database_url: str, log_path: Path, *args: str, **extra_env: str) -> Process:
    """A ``bi-engine worker`` (not started yet)."""
    env = engine_env(database_url, **extra_env)
    return Process(["worker", *args], env, log_path)


@dataclass
class ProcessGroup:
    """Everything a test started, stopped in reverse order at the end."""

    processes: list[Process] = field(default_factory=list)
    servers: list[ApiServer] = field(default_factory=list)

    def add(self, process: Process) -> Process:
        self.processes.append(process)
        return process

    def add_server(self, server: ApiServer) -> ApiServer:
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        for server in reversed(self.servers):
            server.stop()
