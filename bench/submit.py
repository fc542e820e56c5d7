"""Submissions: ``POST /analyze`` through one ``bi-engine serve`` process, beside raw procrastinate.

    python bench/submit.py [--levels 1,8,32,128] [--seconds 6] [--rate 500]

A fresh database is created and migrated; one API process serves it (uvicorn, httptools,
uvloop). Clients in this process (raw keep-alive HTTP/1.1 on uvloop, requests encoded once)
keep ``N`` requests in flight for ``--seconds`` per level (closed loop), then send ``--rate``
requests per second on a fixed schedule (open loop) to read the latency at that rate. The
queue is emptied before each level so every level starts from the same depth. The API
process's own CPU per submission is printed too: on a small machine the load generator and
the server share the same cores.

Baselines, same run, same database: procrastinate's own ``defer_async`` in a loop (one job
per transaction, no API, no HTTP), and the database's ceiling for transactions that NOTIFY
(every submission's transaction does, twice).

Each submission is written in one transaction with its procrastinate job, input, first event
and audit row; concurrent submissions share a transaction (group commit, column jobs/tx).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvloop

from bi_engine import constants, queue
from bi_engine.auth import tokens
from bi_engine.db import migrate
from bi_engine.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import pg  # noqa: E402  (the same throwaway-database helpers as the tests)

SCHEMA = "bi"
BODY = {"type": "test", "data": {}, "priority": "normal"}


@dataclass
class Run:
    label: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    batch: float | None = None
    server_cpu_s: float | None = None

    def row(self) -> str:
        ok = sorted(self.latencies)
        rate = len(ok) / self.seconds if self.seconds else 0.0
        p50 = ok[len(ok) // 2] * 1000 if ok else float("nan")
        p99 = ok[min(len(ok) - 1, int(len(ok) * 0.99))] * 1000 if ok else float("nan")
        batch = f"{self.batch:>8.1f}" if self.batch is not None else f"{'':>8}"
        cpu = f"{self.server_cpu_s / len(ok) * 1000:>9.2f}" if self.server_cpu_s and ok else ""
        return (
            f"{self.label:<34}{len(ok):>8}{rate:>10.0f}{p50:>10.1f}{p99:>10.1f}{self.errors:>8}"
            f"{batch}{cpu}"
        )


HEADER = f"{'':<34}{'done':>8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'jobs/tx':>8}"


def batch_counters(base: str) -> tuple[float, float]:
    """(transactions, submissions) of the server's group commit so far."""
    text = httpx.get(f"{base}/metrics", timeout=5).text
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("bi_submit_batches_total", "bi_submit_batched_jobs_total"):
            values[name] = float(value)
    return values.get("bi_submit_batches_total", 0.0), values.get(
        "bi_submit_batched_jobs_total", 0.0
    )


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def with_batches(base: str, pid: int, measuring: Any) -> Run:
    """Run a load; note submissions per transaction and the server's CPU during it."""
    tx0, jobs0 = batch_counters(base)
    cpu0 = process_cpu_s(pid)
    run: Run = await measuring
    run.server_cpu_s = process_cpu_s(pid) - cpu0
    tx1, jobs1 = batch_counters(base)
    run.batch = (jobs1 - jobs0) / (tx1 - tx0) if tx1 > tx0 else None
    return run


def admin_url() -> str:
    return os.environ.get("BI_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def empty_queue(url: str) -> None:
    with psycopg.connect(url, autocommit=True, options=f"-c search_path={SCHEMA}") as conn:
        conn.execute("TRUNCATE analyses, audit_log, procrastinate_jobs CASCADE")
        conn.execute("VACUUM ANALYZE analyses")


async def baseline(url: str, seconds: float) -> Run:
    """procrastinate alone: defer_async in a loop, one job per transaction."""
    app = queue.make_app(url, SCHEMA)
    run = Run("procrastinate defer_async loop")
    async with app.open_async():
        deferrer = app.configure_task(
            constants.TASK_RUN_ANALYSIS, queue=constants.QUEUE_ANALYSES, priority=10
        )
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            begin = time.perf_counter()
            await deferrer.defer_async(job_id=str(uuid.uuid4()))
            run.latencies.append(time.perf_counter() - begin)
        run.seconds = time.perf_counter() - started
    return run


async def notify_ceiling(url: str, seconds: float, connections: int = 8) -> Run:
    """The database alone: INSERT + NOTIFY per transaction from 8 connections.

    NOTIFY serialises commits database-wide (through the WAL flush), and every submission
    commits two (procrastinate's and the event log's): this bounds submissions per second.
    """
    run = Run(f"INSERT+NOTIFY tx, {connections} conns (DB)")
    conns = [
        await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(connections)
    ]
    await conns[0].execute("CREATE TEMP TABLE IF NOT EXISTS ceiling (id bigserial, v text)")
    for conn in conns[1:]:
        await conn.execute("CREATE TEMP TABLE IF NOT EXISTS ceiling (id bigserial, v text)")
    started = time.perf_counter()
    deadline = started + seconds

    async def sender(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        while time.perf_counter() < deadline:
            begin = time.perf_counter()
            async with conn.transaction():
                await conn.execute("INSERT INTO ceiling (v) VALUES ('x')")
                await conn.execute("SELECT pg_notify('bench_ceiling', 'x')")
            run.latencies.append(time.perf_counter() - begin)

    try:
        await asyncio.gather(*(sender(conn) for conn in conns))
    finally:
        for conn in conns:
            await conn.close()
    run.seconds = time.perf_counter() - started
    return run


class Connection:
    """One keep-alive HTTP/1.1 connection sending a request encoded once, reading 202s.

    The load generator shares the machine with the server: httpx costs about as much CPU
    per request as the server does, so the requests here are bytes prepared in advance and
    the answers are parsed only as far as their status line and ``Content-Length``.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> int:
        """Send ``request``; return the answer's status code once its body is read."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def analyze_request(port: int, token: str) -> bytes:
    body = json.dumps(BODY).encode()
    head = (
        f"POST {constants.API_PREFIX}/analyze HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def closed_loop(port: int, token: str, concurrency: int, seconds: float) -> Run:
    """``concurrency`` users, each with its own keep-alive connection."""
    run = Run(f"POST /analyze, {concurrency:>3} in flight")
    request = analyze_request(port, token)
    connections = [await Connection.open(port) for _ in range(concurrency)]
    try:
        await asyncio.gather(*(c.send(request) for c in connections))
        started = time.perf_counter()
        deadline = started + seconds

        async def user(connection: Connection) -> None:
            while time.perf_counter() < deadline:
                begin = time.perf_counter()
                if await connection.send(request) == 202:
                    run.latencies.append(time.perf_counter() - begin)
                else:
                    run.errors += 1

        await asyncio.gather(*(user(connection) for connection in connections))
        run.seconds = time.perf_counter() - started
    finally:
        for connection in connections:
            connection.close()
    return run


async def open_loop(port: int, token: str, rate: int, seconds: float) -> Run:
    """``rate`` requests per second on a fixed schedule, latency measured from the schedule.

    Each request takes an idle connection (a new one when all are busy, as a client pool
    would), so a slow answer delays no later request.
    """
    run = Run(f"POST /analyze at {rate}/s (open loop)")
    request = analyze_request(port, token)
    idle = [await Connection.open(port) for _ in range(16)]
    everyone = list(idle)
    await asyncio.gather(*(c.send(request) for c in idle))

    async def take() -> Connection:
        if idle:
            return idle.pop()
        connection = await Connection.open(port)
        everyone.append(connection)
        return connection

    async def one(at: float) -> None:
        connection = await take()
        try:
            status = await connection.send(request)
        except (asyncio.IncompleteReadError, ConnectionError):
            # the server closed it after its keep-alive timeout: as a client pool does, the
            # request goes again on a new connection (nothing of it had been answered)
            connection.close()
            connection = await Connection.open(port)
            everyone.append(connection)
            status = await connection.send(request)
        if status == 202:
            run.latencies.append(time.perf_counter() - at)
        else:
            run.errors += 1
        idle.append(connection)

    started = time.perf_counter()
    pending: set[asyncio.Future[None]] = set()
    try:
        for i in range(int(rate * seconds)):
            at = started + i / rate
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            task = asyncio.ensure_future(one(at))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
        run.seconds = time.perf_counter() - started
    finally:
        for connection in everyone:
            connection.close()
    return run


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "BI_DB_SCHEMA": SCHEMA,
        "LOG_LEVEL": "WARNING",
        "BI_RATE_LIMITS": "false",  # one user submits thousands: measure the engine, not 429s
    }
    command = [sys.executable, "-m", "bi_engine", "serve", "--host", "127.0.0.1"]
    return subprocess.Popen(
        [*command, "--port", str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
    )


def wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("bi-engine serve exited")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("bi-engine serve did not become healthy")


async def measure(url: str, args: argparse.Namespace) -> list[Run]:
    runs = [await baseline(url, args.seconds), await notify_ceiling(url, args.seconds)]
    token = tokens.mint_user_token(Settings(database_url=url), user_id="bench", ttl_s=3600)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_server(url, port)
    try:
        wait_healthy(base, process)
        for level in args.levels:
            empty_queue(url)
            runs.append(
                await with_batches(base, process.pid, closed_loop(port, token, level, args.seconds))
            )
            print(runs[-1].row(), flush=True)
        empty_queue(url)
        runs.append(
            await with_batches(base, process.pid, open_loop(port, token, args.rate, args.seconds))
        )
    finally:
        process.terminate()
        process.wait(timeout=20)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,8,32,128")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rate", type=int, default=500)
    args = parser.parse_args()
    args.levels = [int(level) for level in args.levels.split(",")]
    name = pg.unique_name("bi_bench_submit")
    url = pg.create_database(admin_url(), name)
    try:
        migrate.upgrade(url, SCHEMA)
        print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}  one bi-engine serve process")
        print(HEADER, flush=True)
        runs = uvloop.run(measure(url, args))
    finally:
        pg.drop_database(admin_url(), name)
    print("\n" + HEADER)
    for run in runs:
        print(run.row())
    best = max(runs[2:-1], key=lambda r: len(r.latencies) / r.seconds)
    ratio = (len(best.latencies) / best.seconds) / (len(runs[0].latencies) / runs[0].seconds)
    print(f"\nbest API throughput / raw defer_async loop: {ratio:.2f}x")
    print("cpu ms: the API process's CPU per submission (1000 / cpu ms = one core's ceiling)")
    median_ms = statistics.median(runs[0].latencies) * 1000
    print(f"baseline median latency: {median_ms:.2f} ms")


if __name__ == "__main__":
    main()
