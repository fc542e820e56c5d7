"""``bi-engine serve`` as a real process: uvicorn + httptools over TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from bi_engine.auth import tokens
from bi_engine.settings import Settings
from tests.integration.api.conftest import API

pytestmark = [pytest.mark.integration, pytest.mark.acceptance]

LIMIT = 64 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(database_url: str) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BI_DB_SCHEMA": "bi",
        "BI_MAX_BODY_BYTES": str(LIMIT),
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bi_engine", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


def _wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"serve exited: {process.stderr.read().decode() if process.stderr else ''}"
            )
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError("bi-engine serve did not become healthy")


def _auth(database_url: str) -> dict[str, str]:
    settings = Settings(database_url=database_url)
    return {"Authorization": f"Bearer {tokens.mint_user_token(settings, user_id='alice')}"}


async def test_submit_and_read_over_real_http(server, database_url):
    async with httpx.AsyncClient(base_url=server, headers=_auth(database_url)) as client:
        submitted = await client.post(f"{API}/analyze", json={"type": "test", "data": {}})
        assert submitted.status_code == 202
        assert submitted.headers["location"] == submitted.json()["status_url"]
        status = await client.get(submitted.headers["location"])
        assert status.json()["status"] == "queued"
        assert (await client.get("/nope")).json()["error"]["code"] == "not_found"


def _upload_head(database_url: str, framing: str) -> list[str]:
    """The head of an authenticated ``POST /analyze`` whose body framing is ``framing``."""
    return [
        f"POST {API}/analyze HTTP/1.1",
        "Host: 127.0.0.1",
        _auth(database_url)["Authorization"].join(["Authorization: ", ""]),
        "Content-Type: application/json",
        framing,
    ]


async def _request_head(
    port: int, headers: list[str]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(("\r\n".join(headers) + "\r\n\r\n").encode())
    await writer.drain()
    return reader, writer


async def test_declared_oversized_body_is_refused_before_it_is_sent(server, database_url):
    port = int(server.rsplit(":", 1)[1])
    head = _upload_head(database_url, f"Content-Length: {100 * LIMIT}")
    reader, writer = await _request_head(port, head)
    try:
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
        assert status_line.startswith(b"HTTP/1.1 413")
    finally:
        writer.close()


async def test_streamed_oversized_body_is_refused_before_it_ends(server, database_url):
    """A chunked upload that passes the limit and never ends still gets its 413: the answer
    comes from the bytes over the limit, not from the end of a body the server waits for."""
    port = int(server.rsplit(":", 1)[1])
    head = _upload_head(database_url, "Transfer-Encoding: chunked")
    reader, writer = await _request_head(port, head)
    chunk = b"x" * 8192
    try:
        for _ in range(4 * LIMIT // len(chunk)):  # 4x the limit, and never the last chunk
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 413"), status_line


def _refused_upload(server: str, database_url: str) -> tuple[socket.socket, bytes]:
    """Start a chunked upload far over the limit; keep sending until the answer arrives."""
    port = int(server.rsplit(":", 1)[1])
    head = _upload_head(database_url, "Transfer-Encoding: chunked")
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    chunk = b"2000\r\n" + b"x" * 0x2000 + b"\r\n"
    for _ in range(64):  # 8x the limit at most
        sock.sendall(chunk)
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable:
            return sock, sock.recv(65536)
    sock.close()
    raise AssertionError("no answer while sending 8x the body limit")


def test_refused_upload_lingers_so_the_client_can_finish_writing_and_read_the_answer(
    server, database_url
):
    """A client still sending after the 413 is drained, not reset; its EOF closes at once."""
    sock, answer = _refused_upload(server, database_url)
    with sock:
        assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
        for _ in range(20):  # a reset would fail these writes (ECONNRESET / EPIPE)
            sock.sendall(b"2000\r\n" + b"y" * 0x2000 + b"\r\n")
            time.sleep(0.02)
        sock.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
        assert time.monotonic() - started < 1.5, "the server did not close after the client's EOF"
        assert b"413" not in rest  # one answer, then the server's FIN


def test_refused_upload_of_a_client_gone_quiet_is_closed_after_the_idle_linger(
    server, database_url
):
    sock, answer = _refused_upload(server, database_url)
    with sock:
        assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
        sock.settimeout(10)
        started = time.monotonic()
        while sock.recv(65536):
            pass
        waited = time.monotonic() - started
    assert waited < 6, f"the lingering connection stayed open {waited:.1f} s"
