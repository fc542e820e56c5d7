"""``bi-engine serve`` processes: limits shared by replicas, logs without secrets, outages."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import orjson
import psycopg
import pytest
from psycopg import sql

from bi_engine.auth import stream
from bi_engine.auth.principal import Principal
from bi_engine.constants import API_PREFIX as API
from tests import pg
from tests.acceptance.ops.conftest import auth

pytestmark = [pytest.mark.acceptance, pytest.mark.slow]


async def test_the_analyze_limit_is_exact_across_two_api_processes(start, settings, database_url):
    servers = [start("serve"), start("serve")]
    headers = auth(settings)

    async def submit(base: str) -> int:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            response = await http.post(f"{API}/analyze", json={"type": "test"}, headers=headers)
        if response.status_code == 429:
            assert 1 <= int(response.headers["Retry-After"]) <= 60
            assert response.headers["RateLimit-Remaining"] == "0"
        return response.status_code

    codes = await asyncio.gather(*(submit(servers[i % 2].url) for i in range(25)))
    assert sorted(codes) == [202] * 10 + [429] * 15
    with psycopg.connect(database_url, options="-c search_path=bi,public") as conn:
        jobs = conn.execute("SELECT count(*) FROM analyses").fetchone()
        hits = conn.execute("SELECT count(*) FROM rate_limit_hits").fetchone()
    assert jobs == (10,)
    assert hits == (10,)


async def test_request_logs_never_print_tokens(start, settings):
    server = start("serve", env={"LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json"})
    header = auth(settings)
    bearer = header["Authorization"].split()[1]
    streaming = stream.mint_stream_token(settings, Principal("alice"), uuid.uuid4())
    forged = bearer[:-6] + "AAAAAA"
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        assert (await http.get(f"{API}/jobs", headers=header)).status_code == 200
        missing = f"{API}/jobs/{uuid.uuid4()}/events"
        assert (await http.get(missing, params={"token": streaming})).status_code == 404
        assert (await http.get(missing, params={"token": bearer})).status_code == 404
        refused = await http.get(f"{API}/jobs", headers={"Authorization": f"Bearer {forged}"})
        assert refused.status_code == 401
        await http.get(f"{API}/jobs?token={bearer}&api_key=sk-secretsecret123", headers=header)
    server.stop()
    log = server.log()
    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("event") == "http.request"]
    assert len(access) >= 5
    assert all(line["request_id"] for line in access)
    assert {line["route"] for line in access} >= {f"{API}/jobs", f"{API}/jobs/{{job_id}}/events"}
    job_lines = [line for line in access if line["route"].endswith("/events")]
    assert all("job_id" in line for line in job_lines), "job_id is bound on job routes"
    for secret in (bearer, streaming, forged, "sk-secretsecret123", settings.jwt_secret):
        assert secret not in log


def _allow(admin_url: str, dbname: str, allow: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(dbname), sql.SQL("true" if allow else "false")
            )
        )
        if not allow:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )


async def test_a_lost_database_is_503_never_500_and_the_process_recovers(
    start, settings, database_url, pg_admin_url
):
    server = start("serve", env={"LOG_LEVEL": "INFO"})
    name = pg.dbname(database_url)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        _allow(pg_admin_url, name, False)
        try:
            health = await http.get("/health")
            assert health.status_code == 503
            assert health.json()["checks"]["database"]["status"] == "down"
            jobs = await http.get(f"{API}/jobs", headers=auth(settings))
            assert jobs.status_code == 503
            assert jobs.json()["error"]["code"] == "database_unavailable"
            await asyncio.sleep(2)
            assert (await http.get("/health")).status_code == 503
        finally:
            _allow(pg_admin_url, name, True)
        started = time.monotonic()
        while (await http.get("/health")).status_code != 200:
            assert time.monotonic() - started < 25, "the API did not recover by itself"
            await asyncio.sleep(0.2)
        assert (await http.get(f"{API}/jobs", headers=auth(settings))).status_code == 200
    assert server.proc.poll() is None
    log = server.log()
    assert '"status": 503' in log, "the access log shows the 503s"
    assert '"status": 500' not in log
    assert "unhandled_error" not in log
