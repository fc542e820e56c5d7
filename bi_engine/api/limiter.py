"""Rate limits per user on the API's endpoints: Postgres decides, Redis may remember refusals.

Postgres (:mod:`bi_engine.ratelimit`) is the source of truth, exact across every replica.
With ``REDIS_URL`` set (and the ``redis`` package installed) a refusal is remembered in
Redis as "user X is limited in bucket B until T": until T every replica refuses that user
at once without asking Postgres, which is what Postgres would answer too (no slot frees up
before the oldest hit of the window leaves it). Redis failures only cost the fast path:
the limiter carries on with Postgres alone and tries Redis again a little later.
"""

from __future__ import annotations

import time
from typing import Any, Final

import psycopg
import psycopg_pool
import structlog

from bi_engine import ratelimit
from bi_engine.db import ratelimits

REDIS_TIMEOUT_S: Final = 0.25
REDIS_PAUSE_S: Final = 5.0
"""After a Redis error, how long the limiter goes to Postgres directly."""

log = structlog.stdlib.get_logger("bi_engine.ratelimit")


def redis_key_prefix(database_url: str, schema: str) -> str:
    """Keys name the database and schema, so deployments sharing a Redis never mix users."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(database_url)
    except psycopg.ProgrammingError:
        params = {}
    where = f"{params.get('host', '')}:{params.get('port', '')}/{params.get('dbname', '')}"
    return f"bi-engine:{where}/{schema}:ratelimit:"


class RefusalCache:
    """Remembers refusals in Redis until the refused user's window frees a slot."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._paused_until = 0.0

    @classmethod
    def from_url(cls, url: str, prefix: str) -> RefusalCache | None:
        """None when the optional ``redis`` package is not installed."""
        try:
            import redis.asyncio as aioredis
        except ImportError:
            log.warning("ratelimit.redis_package_missing", hint="pip install redis")
            return None
        client = aioredis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        return cls(client, prefix)

    def _key(self, user_id: str, bucket: str) -> str:
        return f"{self.prefix}{bucket}:{user_id}"

    async def limited_until(self, user_id: str, bucket: str) -> float | None:
        """The epoch time until which the user is refused, if Redis remembers one."""
        if time.monotonic() < self._paused_until:
            return None
        try:
            raw = await self.client.get(self._key(user_id, bucket))
        except Exception as exc:
            self._pause(exc)
            return None
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None

    async def remember(self, user_id: str, bucket: str, until: float) -> None:
        ttl_ms = int((until - time.time()) * 1000)
        if ttl_ms <= 0 or time.monotonic() < self._paused_until:
            return
        try:
            await self.client.set(self._key(user_id, bucket), repr(until), px=ttl_ms)
        except Exception as exc:
            self._pause(exc)

    def _pause(self, exc: Exception) -> None:
        self._paused_until = time.monotonic() + REDIS_PAUSE_S
        log.warning("ratelimit.redis_unavailable", error=type(exc).__name__)

    async def close(self) -> None:
        await self.client.aclose()


class Limiter:
    """``check`` allows (recording the hit) or raises :class:`bi_engine.ratelimit.RateLimited`."""

    def __init__(
        self,
        pool: psycopg_pool.AsyncConnectionPool[Any],
        cache: RefusalCache | None = None,
    ) -> None:
        self.pool = pool
        self.cache = cache

    async def check(self, user_id: str, limit: ratelimit.Limit) -> ratelimits.Decision:
        if self.cache is not None:
            until = await self.cache.limited_until(user_id, limit.bucket)
            wait_s = (until - time.time()) if until is not None else 0.0
            if wait_s > 0:
                refused = ratelimits.Decision(False, limit.per_window, 0, wait_s)
                raise ratelimit.RateLimited(refused, limit.bucket)
        try:
            async with self.pool.connection() as conn:
                return await ratelimit.enforce(conn, user_id, limit)
        except ratelimit.RateLimited as refused:
            if self.cache is not None:
                until = time.time() + refused.decision.reset_s
                await self.cache.remember(user_id, limit.bucket, until)
            raise

    async def close(self) -> None:
        if self.cache is not None:
            await self.cache.close()
