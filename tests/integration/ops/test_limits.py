"""Rate limits on the endpoints (CONTRACT section 11), with and without the Redis cache."""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg_pool
import pytest

from bi_engine import ratelimit
from bi_engine.api.app import make_pool
from bi_engine.api.limiter import Limiter, RefusalCache
from bi_engine.settings import Settings
from tests.integration.ops.conftest import API, running

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def api_pool(settings: Settings) -> AsyncIterator[psycopg_pool.AsyncConnectionPool[Any]]:
    pool = make_pool(settings)
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()


REDIS = ("127.0.0.1", 6379)


def redis_installed() -> bool:
    try:
        import redis  # noqa: F401
    except ImportError:
        return False
    return True


def redis_available() -> bool:
    if not redis_installed():
        return False
    try:
        with socket.create_connection(REDIS, timeout=0.5):
            return True
    except OSError:
        return False


needs_redis = pytest.mark.skipif(not redis_available(), reason="no Redis on 127.0.0.1:6379")


async def test_allowed_answers_carry_the_limit_and_refusals_say_when_to_retry(client, auth):
    first = await client.post(f"{API}/analyze", json={"type": "test"}, headers=auth())
    assert first.status_code == 202
    assert first.headers["RateLimit-Limit"] == "10"
    assert first.headers["RateLimit-Remaining"] == "9"
    assert first.headers["RateLimit-Policy"] == "10;w=60"
    for _ in range(9):
        await client.post(f"{API}/analyze", json={"type": "test"}, headers=auth())
    refused = await client.post("/api/analyze", json={"type": "test"}, headers=auth())
    assert refused.status_code == 429
    body = refused.json()
    assert body["success"] is False
    assert body["error"]["code"] == "rate_limited"
    assert body["error"]["details"] == {"limit": 10, "window_s": 60, "bucket": "analyze"}
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    # another user, and another bucket of the same user, are not affected
    other = await client.post("/api/analyze", json={"type": "test"}, headers=auth("bob"))
    assert other.status_code == 202
    listed = await client.get(f"{API}/jobs", headers=auth())
    assert listed.status_code == 200
    assert listed.headers["RateLimit-Limit"] == "60"


async def test_status_reads_share_one_budget_of_60(client, auth):
    job = (await client.post(f"{API}/analyze", json={"type": "test"}, headers=auth())).json()
    paths = [
        f"{API}/jobs/{job['job_id']}",
        f"{API}/status/{job['job_id']}",
        f"{API}/jobs/{job['job_id']}/result",
        f"{API}/results/{job['job_id']}",
        f"{API}/jobs/{job['job_id']}/report",
        f"{API}/jobs",
    ]
    codes = [(await client.get(paths[i % 6], headers=auth())).status_code for i in range(61)]
    assert 429 not in codes[:60]
    assert codes[60] == 429
    # cancel is not a status read
    cancel = await client.post(f"{API}/jobs/{job['job_id']}/cancel", headers=auth())
    assert cancel.status_code == 200
    assert "RateLimit-Limit" not in cancel.headers


async def test_template_writes_are_limited_to_5(client, auth):
    codes = []
    for n in range(6):
        created = await client.post(
            f"{API}/templates", json={"name": f"t{n}", "question": "Why?"}, headers=auth()
        )
        codes.append(created.status_code)
    assert codes == [201] * 5 + [429]
    assert (await client.get(f"{API}/templates", headers=auth())).status_code == 200


async def test_an_oversized_body_is_refused_before_the_limit_counts(settings, auth, db):
    async with running(settings, max_body_bytes=1024) as (_app, client):
        big = {"type": "test", "data": {"blob": "x" * 4096}}
        response = await client.post(f"{API}/analyze", json=big, headers=auth())
        assert response.status_code == 413
    with db() as conn:
        assert conn.execute("SELECT count(*) AS n FROM rate_limit_hits").fetchone() == {"n": 0}


@needs_redis
async def test_redis_remembers_refusals_and_spares_postgres(settings, auth, db):
    prefix = f"bi-test:{uuid.uuid4().hex}:"
    async with running(settings, redis_prefix=prefix, redis_url="redis://127.0.0.1:6379/0") as (
        app,
        client,
    ):
        limiter = app.state.engine.limiter
        assert limiter.cache is not None
        for _ in range(10):
            await client.post(f"{API}/analyze", json={"type": "test"}, headers=auth())
        refused = await client.post(f"{API}/analyze", json={"type": "test"}, headers=auth())
        assert refused.status_code == 429
        key = f"{prefix}analyze:alice"
        assert await limiter.cache.client.pttl(key) > 0
        # Postgres would allow now (its hits are gone); Redis still refuses until T
        with db() as conn:
            conn.execute("DELETE FROM rate_limit_hits")
        again = await client.post(f"{API}/analyze", json={"type": "test"}, headers=auth())
        assert again.status_code == 429
        assert 1 <= int(again.headers["Retry-After"]) <= 60
        # other users go to Postgres as usual
        bob = await client.post(f"{API}/analyze", json={"type": "test"}, headers=auth("bob"))
        assert bob.status_code == 202
        await limiter.cache.client.delete(key)


@pytest.mark.skipif(not redis_installed(), reason="the optional redis package is missing")
async def test_a_redis_outage_falls_back_to_postgres(settings):
    cache = RefusalCache.from_url("redis://127.0.0.1:1/0", f"bi-test:{uuid.uuid4().hex}:")
    assert cache is not None
    limit = ratelimit.Limit("analyze", 3)
    async with api_pool(settings) as pool:
        limiter = Limiter(pool, cache)
        allowed = 0
        for _ in range(5):
            try:
                await limiter.check("carol", limit)
                allowed += 1
            except ratelimit.RateLimited:
                pass
        await limiter.close()
    assert allowed == 3
