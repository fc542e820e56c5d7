"""Live events: commit-to-client latency through one API process, and how many clients it holds.

    python bench/events.py [--clients 100,1000] [--events 200] [--max-clients 10000]

One ``bi-engine serve`` process; SSE clients in a separate process built on raw asyncio
protocols (so the client side costs little); a writer in this process appends progress
events one transaction each and notes when each commit was acknowledged (latencies run
from there; the clock is CLOCK_MONOTONIC, shared by all processes, so a value slightly
below zero means the event arrived before the writer saw its acknowledgement). Printed
beside it, from the same commits: the raw LISTEN/NOTIFY latency seen by a bare psycopg
async listener in its own process. "server CPU" is the API process's user+system time
during the writes divided by events x clients.
Then the clients ramp up to ``--max-clients`` streams to find what one process holds and
its RSS per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "bi"
API = "/api/business-intelligence"


# ----------------------------------------------------------------------------- helpers


def raise_nofile() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_dbname(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    from bi_engine.db import migrate

    name = f"bench_events_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_dbname(admin_url, name)
    try:
        migrate.upgrade(url, SCHEMA)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def api_server(database_url: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "DATABASE_URL": database_url, "BI_DB_SCHEMA": SCHEMA}
    env["LOG_LEVEL"] = "WARNING"
    command = [sys.executable, "-m", "bi_engine", "serve", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port)], env=env, cwd=ROOT, preexec_fn=raise_nofile
    )
    try:
        wait_healthy(port)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_healthy(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=1) as sock,
        ):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            if b" 200 " in sock.recv(64):
                return
        time.sleep(0.2)
    raise RuntimeError("the API server did not become healthy")


def admin_tokens(count: int) -> list[str]:
    """Distinct admin users: the per-user stream limit applies per user."""
    from bi_engine.auth import tokens
    from bi_engine.settings import load_settings

    settings = load_settings()
    return [
        tokens.mint_user_token(settings, user_id=f"bench-{i}", role="admin", ttl_s=7200)
        for i in range(count)
    ]


def new_job(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(
        "INSERT INTO bi.analyses (user_id, type, status, started_at)"
        " VALUES ('bench-owner', 'test', 'running', now()) RETURNING id"
    ).fetchone()
    assert row is not None
    return str(row[0])


# ----------------------------------------------------------------------------- clients


class SSEClient(asyncio.Protocol):
    """Stamps when each ``id: <seq>`` line arrives; nothing else is parsed."""

    def __init__(self, request: bytes, clients: ClientPool) -> None:
        self.request = request
        self.clients = clients
        self.tail = b""
        self.highest = 0
        self.seen: dict[int, float] = {}
        self.ready = False
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buffer = self.tail + data
        if not self.ready and b"retry: " in buffer:
            self.ready = True
            self.clients.on_ready()
        start = 0
        while True:
            at = buffer.find(b"\nid: ", start)
            if at < 0:
                break
            end = buffer.find(b"\n", at + 5)
            if end < 0:
                break
            seq = int(buffer[at + 5 : end])
            if seq > self.highest:
                self.highest = seq
                self.seen[seq] = now
            start = end
        self.tail = buffer[-24:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.clients.on_lost()


class ClientPool:
    def __init__(self) -> None:
        self.protocols: list[SSEClient] = []
        self.ready = 0
        self.lost = 0
        self.changed = asyncio.Event()

    def on_ready(self) -> None:
        self.ready += 1
        self.changed.set()

    def on_lost(self) -> None:
        self.lost += 1
        self.changed.set()

    async def open(self, port: int, job: str, tokens: list[str]) -> None:
        loop = asyncio.get_running_loop()
        for start in range(0, len(tokens), 250):
            for token in tokens[start : start + 250]:
                request = (
                    f"GET {API}/jobs/{job}/events?token={token} HTTP/1.1\r\n"
                    "Host: bench\r\nAccept: text/event-stream\r\n\r\n"
                ).encode()
                _, protocol = await loop.create_connection(
                    functools.partial(SSEClient, request, self), "127.0.0.1", port
                )
                self.protocols.append(protocol)
            await self.wait_ready(len(self.protocols), 60)

    async def wait_ready(self, count: int, timeout: float) -> None:
        deadline = loop_time() + timeout
        while self.ready < count:
            if self.lost:
                raise RuntimeError(f"{self.lost} client connections were closed")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - loop_time()))
            if loop_time() > deadline:
                raise RuntimeError(f"only {self.ready}/{count} streams opened")

    def close(self) -> None:
        for protocol in self.protocols:
            if protocol.transport is not None:
                protocol.transport.close()


def loop_time() -> float:
    return asyncio.get_running_loop().time()


async def client_main(port: int, job: str, tokens: list[str], steps: list[int]) -> None:
    """Client process: open streams (in ``steps``), report on stdout, obey stdin commands."""
    pool = ClientPool()
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    opened = 0
    for step in steps:
        await pool.open(port, job, tokens[opened:step])
        opened = step
        print(json.dumps({"ready": opened}), flush=True)
        await reader.readline()  # "next"
    command = (await reader.readline()).decode().strip()  # "collect <last_seq>"
    last = int(command.split()[1])
    deadline = loop_time() + 60
    while any(p.highest < last for p in pool.protocols) and loop_time() < deadline:
        await asyncio.sleep(0.05)
    received = [{str(k): v for k, v in p.seen.items()} for p in pool.protocols]
    sys.stdout.write(json.dumps({"received": received}) + "\n")
    sys.stdout.flush()
    pool.close()


def run_client(args: argparse.Namespace) -> None:
    raise_nofile()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    tokens = json.loads(Path(args.tokens).read_text())
    steps = [int(s) for s in args.steps.split(",")]
    asyncio.run(client_main(args.port, args.job, tokens, steps))


class ClientProcess:
    def __init__(self, port: int, job: str, tokens: list[str], steps: list[int], tmp: Path):
        token_file = tmp / f"tokens-{uuid.uuid4().hex[:6]}.json"
        token_file.write_text(json.dumps(tokens[: steps[-1]]))
        command = [sys.executable, __file__, "--role", "client", "--port", str(port)]
        command += ["--job", job, "--tokens", str(token_file)]
        command += ["--steps", ",".join(map(str, steps))]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT
        )

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the client process ended early")
        return dict(json.loads(line))

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")
        self.process.stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()  # type: ignore[union-attr]
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


# ----------------------------------------------------------------------------- raw NOTIFY


async def notify_main(database_url: str, job: str) -> None:
    """Probe process: a bare psycopg async LISTEN connection, stamping each event's arrival."""
    seen: dict[int, float] = {}
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    async with conn:
        await conn.execute(f"LISTEN {SCHEMA}_events")
        print(json.dumps({"listening": True}), flush=True)
        stop = asyncio.ensure_future(reader.readline())
        while not stop.done():
            async for notify in conn.notifies(timeout=0.2):
                now = time.monotonic()
                for event in orjson.loads(notify.payload).get("events", ()):
                    if event["job_id"] == job:
                        seen[int(event["seq"])] = now
    print(json.dumps({"received": [{str(k): v for k, v in seen.items()}]}), flush=True)


class NotifyProbe:
    """The raw LISTEN/NOTIFY baseline, in its own process like the SSE clients."""

    def __init__(self, database_url: str, job: str) -> None:
        command = [sys.executable, __file__, "--role", "notify", "--job", job]
        self.process = subprocess.Popen(
            [*command, "--database-url", database_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        self.seen: dict[int, float] = {}

    def __enter__(self) -> NotifyProbe:
        assert self.process.stdout is not None
        self.process.stdout.readline()  # listening
        return self

    def __exit__(self, *_: object) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(b"stop\n")
        self.process.stdin.flush()
        received = json.loads(self.process.stdout.readline())["received"][0]
        self.seen = {int(k): v for k, v in received.items()}
        self.process.wait(10)


# ----------------------------------------------------------------------------- rounds


def write_events(
    conn: psycopg.Connection[Any], job: str, count: int, gap_s: float
) -> dict[int, float]:
    committed: dict[int, float] = {}
    for i in range(count):
        event = [{"kind": "progress", "data": {"progress": i % 100, "step": "bench", "i": i}}]
        row = conn.execute("SELECT bi.append_events(%s, %s)", (job, Jsonb(event))).fetchone()
        acknowledged = time.monotonic()  # the commit happened just before its acknowledgement
        assert row is not None
        committed[int(row[0])] = acknowledged
        time.sleep(gap_s)
    return committed


def latencies(committed: dict[int, float], seen: dict[int, float]) -> list[float]:
    return [(seen[seq] - at) * 1000 for seq, at in committed.items() if seq in seen]


def latency_round(
    database_url: str,
    server_pid: int,
    port: int,
    clients: int,
    events: int,
    rate: float,
    tokens: list[str],
    tmp: Path,
) -> dict[str, Any]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        job = new_job(conn)
        client = ClientProcess(port, job, tokens, [clients], tmp)
        try:
            client.read()  # all streams open
            client.send("next")
            time.sleep(0.5)
            with NotifyProbe(database_url, job) as probe:
                cpu_before = cpu_s(server_pid)
                committed = write_events(conn, job, events, gap_s=1 / rate)
                time.sleep(0.3)
                cpu = cpu_s(server_pid) - cpu_before
            client.send(f"collect {max(committed)}")
            received = client.read()["received"]
        finally:
            client.close()
    samples: list[float] = []
    complete = 0
    for per_client in received:
        seen = {int(k): v for k, v in per_client.items()}
        samples.extend(latencies(committed, seen))
        complete += all(seq in seen for seq in committed)
    raw = latencies(committed, probe.seen)
    per_send_us = cpu / (events * clients) * 1e6
    return {
        "clients": clients,
        "complete": complete,
        "sse": samples,
        "notify": raw,
        "per_send_us": per_send_us,
    }


def capacity_round(
    database_url: str, port: int, server_pid: int, steps: list[int], tokens: list[str], tmp: Path
) -> list[tuple[int, int, bool]]:
    results = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        job = new_job(conn)
        base = rss_kib(server_pid)
        results.append((0, base, True))
        client = ClientProcess(port, job, tokens, steps, tmp)
        try:
            for _ in steps:
                opened = client.read()["ready"]
                time.sleep(1.0)
                results.append((opened, rss_kib(server_pid), True))
                client.send("next")
            committed = write_events(conn, job, 1, gap_s=0)
            client.send(f"collect {max(committed)}")
            received = client.read()["received"]
        finally:
            client.close()
    delivered = sum(1 for per_client in received if per_client)
    results[-1] = (results[-1][0], results[-1][1], delivered == steps[-1])
    return results


# ----------------------------------------------------------------------------- report


def print_latency(result: dict[str, Any]) -> None:
    sse, raw = result["sse"], result["notify"]
    print(
        f"{result['clients']:>6} clients  SSE p50 {percentile(sse, 50):6.2f} ms"
        f"  p99 {percentile(sse, 99):6.2f} ms  max {max(sse):7.2f} ms"
        f"  | raw LISTEN/NOTIFY p50 {percentile(raw, 50):5.2f} ms"
        f"  p99 {percentile(raw, 99):5.2f} ms"
        f"  | {result['complete']}/{result['clients']} clients got every event"
        f" ({len(sse)} samples, mean {statistics.fmean(sse):.2f} ms;"
        f" server CPU {result['per_send_us']:.1f} us per event per client)"
    )


def print_capacity(results: list[tuple[int, int, bool]]) -> None:
    base = results[0][1]
    print(f"  server RSS with no stream: {base / 1024:.1f} MiB")
    for opened, rss, ok in results[1:]:
        per = (rss - base) / opened if opened else 0.0
        print(
            f"  {opened:>6} streams  RSS {rss / 1024:7.1f} MiB  {per:5.1f} KiB per connection"
            + ("" if ok else "  (NOT every stream got the event)")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", default="bench", choices=["bench", "client", "notify"])
    parser.add_argument("--database-url")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--clients", default="100,1000")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second written")
    parser.add_argument("--max-clients", type=int, default=10000)
    parser.add_argument("--port", type=int)
    parser.add_argument("--job")
    parser.add_argument("--tokens")
    parser.add_argument("--steps")
    args = parser.parse_args()
    if args.role == "client":
        run_client(args)
        return
    if args.role == "notify":
        asyncio.run(notify_main(args.database_url, args.job))
        return
    run_bench(args)


def run_bench(args: argparse.Namespace) -> None:
    import tempfile

    limit = raise_nofile()
    rounds = [int(n) for n in args.clients.split(",") if n]
    steps = [n for n in (1000, 2500, 5000, 7500, 10000) if n < args.max_clients]
    steps.append(args.max_clients)
    tokens = admin_tokens(max([*rounds, args.max_clients]))
    print(
        f"open files limit {limit}; {os.cpu_count()} CPUs; load average"
        f" {os.getloadavg()[0]:.2f}; writer: {args.events} events, 1 per transaction,"
        f" {args.rate:g}/s"
    )
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.admin_url) as url:
        port = free_port()
        with api_server(url, port) as server:
            print("commit -> client latency (one bi-engine serve process, httptools, uvloop)")
            for clients in rounds:
                result = latency_round(
                    url, server.pid, port, clients, args.events, args.rate, tokens, Path(tmp)
                )
                print_latency(result)
        if args.max_clients <= 0:
            return
        print("concurrent SSE clients held by one API process (a fresh one)")
        port = free_port()
        with api_server(url, port) as server:
            print_capacity(capacity_round(url, port, server.pid, steps, tokens, Path(tmp)))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
