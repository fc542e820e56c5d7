"""Rate limits in Postgres: exact under concurrency, refused requests do not count."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from bi_engine import ratelimit
from bi_engine.db import connection

pytestmark = pytest.mark.integration


async def test_limit_is_exact_under_concurrency(database_url: str) -> None:
    conns = [await connection.connect(database_url, "bi") for _ in range(40)]
    try:
        limit = ratelimit.Limit("analyze", 10)

        async def attempt(conn: psycopg.AsyncConnection[Any]) -> bool:
            try:
                await ratelimit.enforce(conn, "alice", limit)
            except ratelimit.RateLimited:
                return False
            return True

        outcomes = await asyncio.gather(*(attempt(conn) for conn in conns))
        assert sum(outcomes) == 10
        cursor = await conns[0].execute("SELECT count(*) AS n FROM rate_limit_hits")
        assert (await cursor.fetchone()) == {"n": 10}
        # another user and another bucket are independent
        await ratelimit.enforce(conns[0], "bob", limit)
        await ratelimit.enforce(conns[0], "alice", ratelimit.Limit("status_reads", 60))
    finally:
        for conn in conns:
            await conn.close()


async def test_refusal_carries_retry_after_and_headers(database_url: str) -> None:
    conn = await connection.connect(database_url, "bi")
    try:
        limit = ratelimit.Limit("template_writes", 2)
        first = await ratelimit.enforce(conn, "carol", limit)
        assert ratelimit.headers(first)["RateLimit-Remaining"] == "1"
        await ratelimit.enforce(conn, "carol", limit)
        with pytest.raises(ratelimit.RateLimited) as refused:
            await ratelimit.enforce(conn, "carol", limit)
        assert 1 <= refused.value.retry_after_s <= 60
        headers = ratelimit.headers(refused.value.decision)
        assert headers["RateLimit-Remaining"] == "0"
        assert 1 <= int(headers["Retry-After"]) <= 60
    finally:
        await conn.close()


async def test_window_slides(database_url: str) -> None:
    conn = await connection.connect(database_url, "bi")
    try:
        limit = ratelimit.Limit("analyze", 1)
        await ratelimit.enforce(conn, "dave", limit)
        await conn.execute("UPDATE rate_limit_hits SET at = at - interval '61 seconds'")
        await ratelimit.enforce(conn, "dave", limit)
        cursor = await conn.execute("SELECT count(*) AS n FROM rate_limit_hits")
        assert (await cursor.fetchone()) == {"n": 1}, "old hits are forgotten"
    finally:
        await conn.close()
