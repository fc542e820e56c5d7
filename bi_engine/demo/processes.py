"""The API and the worker as real child processes, stopped with the demo."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bi_engine.errors import BIError


class DemoStartFailed(BIError):
    """A demo process did not start; its log file says why."""

    code = "demo_start_failed"


def free_port(preferred: int) -> int:
    """``preferred`` when it is free, else any free port on 127.0.0.1."""
    for candidate in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise DemoStartFailed("no free TCP port on 127.0.0.1")


@contextlib.contextmanager
def child(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Iterator[Path]:
    """Run ``bi-engine <args>`` with output to ``<log_dir>/<name>.log``; SIGTERM it after."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bi_engine", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield log_path
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def wait_healthy(base_url: str, log_path: Path, timeout_s: float = 60.0) -> None:
    """Poll ``/health`` until it answers 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise DemoStartFailed(f"the API did not become healthy in {timeout_s:g} s; see {log_path}")
