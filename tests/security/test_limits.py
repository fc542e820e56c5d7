"""Oversized bodies and headers, slow bodies, deeply nested JSON, path traversal.

Every one gets a clear 4xx (or a closed connection for what no HTTP parser accepts), never
a 5xx, never a hang, and the server answers normally right after.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from bi_engine.api.app import create_app
from bi_engine.api.middleware import BodyLimitMiddleware
from bi_engine.settings import Settings
from tests.support import figures, jobs
from tests.support.inprocess import serving, set_middleware_options
from tests.support.processes import ApiServer

pytestmark = [pytest.mark.slow, pytest.mark.acceptance]

API = jobs.API
MIB = 2**20


async def _healthy(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).status_code == 200


def _raw(port: int, request: bytes, timeout: float = 30) -> tuple[bytes, float]:
    """Send raw bytes; return what came back before the server closed (and how long)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        started = time.monotonic()
        with contextlib.suppress(OSError):
            sock.sendall(request)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
        return b"".join(chunks), time.monotonic() - started


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


# --------------------------------------------------------------------------- bodies


async def test_oversized_bodies_are_413(
    server: ApiServer, http: httpx.AsyncClient, sec_settings: Settings
) -> None:
    token = jobs.bearer(sec_settings, "big")
    big = b'{"type": "test", "data": {"x": "' + b"a" * (11 * MIB) + b'"}}'
    outcomes = {}
    for path in (f"{API}/analyze", "/api/analyze", f"{API}/templates"):
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        declared = f"{head}Content-Type: application/json\r\nContent-Length: {len(big)}\r\n\r\n"
        answer, seconds = await asyncio.to_thread(_raw, server.port, declared.encode())
        outcomes[f"{path} declared"] = _status(answer)
        assert seconds < 5  # refused on the header, before any of the body
        chunked = f"{head}Transfer-Encoding: chunked\r\n\r\n".encode() + b"".join(
            b"%x\r\n%s\r\n" % (MIB, big[i : i + MIB]) for i in range(0, 11 * MIB, MIB)
        )
        answer, _ = await asyncio.to_thread(_raw, server.port, chunked)
        outcomes[f"{path} chunked"] = _status(answer)
        assert b"payload_too_large" in answer, answer[:300]
    assert set(outcomes.values()) == {413}, outcomes
    await _healthy(http)
    figures.record(
        "security",
        f"oversized bodies: 11 MiB declared and chunked to {len(outcomes) // 2} endpoints:"
        " all 413 (declared ones before reading the body)",
    )


async def test_oversized_and_numerous_headers_are_refused(
    server: ApiServer, http: httpx.AsyncClient
) -> None:
    outcomes = {}
    cases = {
        "one 100 KiB header": b"X-Big: " + b"a" * 100_000 + b"\r\n",
        "a 1 MiB header": b"X-Big: " + b"a" * MIB + b"\r\n",
        "5,000 headers": b"".join(b"X-H%d: v\r\n" % i for i in range(5000)),
        "a 100 KiB bearer token": b"Authorization: Bearer " + b"a" * 100_000 + b"\r\n",
        "a 100 KiB URL": b"",
    }
    for name, extra in cases.items():
        path = b"/health" if name != "a 100 KiB URL" else b"/health?" + b"a" * 100_000
        request = (
            b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"Connection: close\r\n\r\n"
        )
        answer, _ = await asyncio.to_thread(_raw, server.port, request)
        outcomes[name] = _status(answer)
    assert set(outcomes.values()) <= {400, 414, 431}, outcomes
    await _healthy(http)
    figures.record("security", f"oversized headers/URL: {outcomes}")


async def test_deeply_nested_json_is_a_4xx(
    http: httpx.AsyncClient, auth: Callable[..., dict[str, str]], sec_database_url: str
) -> None:
    outcomes = {}
    for depth in (200, 260, 1_000, 100_000):
        nested = b'{"a":' * depth + b"1" + b"}" * depth
        body = b'{"type": "test", "data": ' + nested + b"}"
        response = await http.post(
            f"{API}/analyze", content=body, headers={**auth(), "Content-Type": "application/json"}
        )
        outcomes[depth] = response.status_code
        arrays = b'{"type": "test", "data": {"a": ' + b"[" * depth + b"]" * depth + b"}}"
        listed = await http.post(f"{API}/analyze", content=arrays, headers=auth())
        outcomes[-depth] = listed.status_code
        template = b'{"name": "deep", "config": ' + nested + b"}"
        saved = await http.post(f"{API}/templates", content=template, headers=auth())
        outcomes[depth * 10] = saved.status_code
    assert all(400 <= s < 500 or s in (201, 202) for s in outcomes.values()), outcomes
    assert outcomes[100_000] in (400, 422)
    assert outcomes[1_000] in (400, 422)
    await _healthy(http)
    figures.record(
        "security",
        "nested JSON (objects and arrays, 200 to 100,000 levels, in data and template config):"
        f" {sorted(set(outcomes.values()))}, never a 5xx",
    )


# --------------------------------------------------------------------------- slow bodies


async def test_a_stalled_body_times_out_on_the_real_server(
    server: ApiServer, sec_settings: Settings
) -> None:
    token = jobs.bearer(sec_settings, "slow")
    request = (
        f"POST {API}/analyze HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        '{"type": "test", "data": {'
    ).encode()
    answer, seconds = await asyncio.to_thread(_raw, server.port, request, 40)
    assert _status(answer) == 408, answer[:300]
    assert b"request_timeout" in answer
    assert 10 < seconds < 25, seconds  # BODY_IDLE_TIMEOUT_S = 15
    figures.record(
        "security", f"slow body: a stalled body got 408 after {seconds:.1f} s (real server)"
    )


@pytest.fixture
async def short_timeouts(sec_settings: Settings) -> AsyncIterator[str]:
    """The app with a 1 s idle and a 3 s total body timeout, on a real uvicorn."""
    app = create_app(sec_settings.model_copy(update={"rate_limits": False}))
    set_middleware_options(app, BodyLimitMiddleware, idle_timeout_s=1.0, timeout_s=3.0)
    async with serving(app) as url:
        yield url


async def test_a_trickling_body_times_out_in_total(
    short_timeouts: str, sec_settings: Settings
) -> None:
    port = httpx.URL(short_timeouts).port
    assert port is not None
    token = jobs.bearer(sec_settings, "slow")
    head = (
        f"POST {API}/analyze HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    ).encode()

    def trickle() -> tuple[int, float]:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(head)
            started = time.monotonic()
            sock.setblocking(False)
            answer = b""
            while time.monotonic() - started < 15:
                try:
                    sock.sendall(b" ")  # one byte every 0.5 s: never idle for 1 s
                except OSError:
                    break
                time.sleep(0.5)
                try:
                    answer += sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    break
                if answer:
                    break
            return _status(answer), time.monotonic() - started

    status, seconds = await asyncio.to_thread(trickle)
    assert status == 408
    assert 2.5 < seconds < 6, seconds
    async with httpx.AsyncClient(base_url=short_timeouts) as http:
        ok = await http.post(
            f"{API}/analyze",
            json={"type": "test", "data": {}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert ok.status_code == 202  # a normal body is not affected
        stream = await _open_stream(http, token, ok.json()["job_id"])
        assert stream == 200  # long-lived streams are not cut by the body timeouts


async def _open_stream(http: httpx.AsyncClient, token: str, job_id: str) -> int:
    url = f"{API}/jobs/{job_id}/events"
    async with http.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as r:
        await asyncio.sleep(4)  # longer than both body timeouts
        return r.status_code


# --------------------------------------------------------------------------- traversal

TRAVERSALS = [
    "/dashboard/../../../../etc/passwd",
    "/dashboard/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/dashboard/%252e%252e/%252e%252e/etc/passwd",
    "/dashboard/..%2f..%2f..%2fpyproject.toml",
    "/dashboard/....//....//etc/passwd",
    "/dashboard/js/../../settings.py",
    "/dashboard/js/..%5c..%5csettings.py",
    "/dashboard/%00../../etc/passwd",
    "/dashboard/samples/..%2f..%2fsettings",
    "/dashboard/samples/../settings",
    "/dashboard/samples/%2e%2e%2fapi%2fapp",
    "/dashboard/samples/..%5c..%5cpyproject",
    "/dashboard/samples/process_log%00.py",
    "/dashboard//etc/passwd",
    "/dashboard/" + "../" * 40 + "etc/passwd",
]
LEAKS = (b"root:", b"BaseSettings", b"[project]", b"create_app", b"import ")


async def test_path_traversal_never_leaves_the_served_folders(
    server: ApiServer, http: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    outcomes: dict[str, int] = {}
    for path in TRAVERSALS:
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        answer, _ = await asyncio.to_thread(_raw, server.port, request)
        outcomes[path] = _status(answer)
        assert not any(leak in answer for leak in LEAKS), (path, answer[:300])
    for job in ("../../etc/passwd", "..%2f..%2fhealth", "%2e%2e", "x/../../metrics", "."):
        for suffix in ("", "/report", "/result", "/events"):
            request = (
                f"GET {API}/jobs/{job}{suffix} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: {auth('alice')['Authorization']}\r\nConnection: close\r\n\r\n"
            ).encode()
            answer, _ = await asyncio.to_thread(_raw, server.port, request)
            outcomes[f"jobs/{job}{suffix}"] = _status(answer)
            assert not any(leak in answer for leak in LEAKS), (job, answer[:300])
    assert all(s in (400, 404, 405) for s in outcomes.values()), outcomes
    await _healthy(http)
    figures.record(
        "security",
        f"path traversal: {len(outcomes)} paths (dashboard files, samples, job reports), all"
        f" {sorted(set(outcomes.values()))}, no file outside the served folders",
    )


def test_the_sample_endpoint_serves_only_listed_names(server: ApiServer) -> None:
    listed = httpx.get(f"{server.url}/dashboard/samples").json()["samples"]
    assert listed
    for sample in listed:
        assert httpx.get(f"{server.url}{sample['url']}").status_code == 200
    assert httpx.get(f"{server.url}/dashboard/samples/__init__").status_code == 404
