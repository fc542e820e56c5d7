"""Per-user rate limits of CONTRACT section 11: at most N requests in any 60-second window."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import psycopg

from bi_engine.db import ratelimits
from bi_engine.errors import BIError

WINDOW_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class Limit:
    bucket: str
    per_window: int


ANALYZE: Final = Limit("analyze", 10)
STATUS_READS: Final = Limit("status_reads", 60)
TEMPLATE_WRITES: Final = Limit("template_writes", 5)


class RateLimited(BIError):
    """Too many requests: wait for the time in Retry-After, then try again."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, decision: ratelimits.Decision, bucket: str) -> None:
        self.decision = decision
        self.retry_after_s = max(1, math.ceil(decision.reset_s))
        super().__init__(
            f"Rate limit of {decision.limit} {bucket.replace('_', ' ')} requests per minute "
            f"reached; retry in {self.retry_after_s} s.",
            details={"limit": decision.limit, "window_s": int(WINDOW_S), "bucket": bucket},
        )


def headers(decision: ratelimits.Decision) -> dict[str, str]:
    """IETF RateLimit-* headers (and Retry-After when refused)."""
    values = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(math.ceil(decision.reset_s)),
        "RateLimit-Policy": f"{decision.limit};w={int(WINDOW_S)}",
    }
    if not decision.allowed:
        values["Retry-After"] = str(max(1, math.ceil(decision.reset_s)))
    return values


async def enforce(
    conn: psycopg.AsyncConnection[Any], user_id: str, limit: Limit
) -> ratelimits.Decision:
    """Record the request or raise :class:`RateLimited` (which records nothing)."""
    decision = await ratelimits.decide(conn, user_id, limit.bucket, limit.per_window, WINDOW_S)
    if not decision.allowed:
        raise RateLimited(decision, limit.bucket)
    return decision
