"""A private PostgreSQL server for tests that stop and start the database.

The shared server on 127.0.0.1:5432 serves other test runs and must never be restarted, so
a test that needs an outage gets its own cluster: ``initdb`` into a temporary folder and
``pg_ctl`` on a free loopback port (TCP, like a deployment). The Debian binaries are used
when present, else the ones bundled with ``pgserver``. As root, the server runs as the
``postgres`` system user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.support.processes import free_port


def _bin_dir() -> Path:
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if debian:
        return Path(debian[-1]).parent
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def _run_as() -> str | None:
    """The system user the server runs as when this process is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgserver"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root, but there is no 'postgres' user to run PostgreSQL")


@dataclass
class PrivatePostgres:
    """One throwaway cluster; :meth:`stop` and :meth:`start` make an outage on demand."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bi-private-pg-")))
    port: int = field(default_factory=free_port)
    bindir: Path = field(default_factory=_bin_dir)
    user: str | None = field(default_factory=_run_as)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _cmd(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def init(self) -> PrivatePostgres:
        if self.user is not None:
            shutil.chown(self.root, self.user)
        self._cmd("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "server.log")
        self._cmd("pg_ctl", "-D", str(self.datadir), "-o", options, "-l", log, "-w", "start")
        self._wait_ready()

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: every connection dropped at once, as when the server crashes."""
        try:
            self._cmd("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop", timeout=20)
        except subprocess.TimeoutExpired:
            self._kill_postmaster()

    def _kill_postmaster(self) -> None:
        """SIGQUIT to the postmaster (what ``-m immediate`` sends), then wait for it to go."""
        pid_file = self.datadir / "postmaster.pid"
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
        deadline = time.monotonic() + 30
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def destroy(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
