"""SQL for ``llm_calls``: one row per provider request (or skip), the job and month totals."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg

_INSERT = """
INSERT INTO llm_calls
    (job_id, provider, model, outcome, prompt_tokens, completion_tokens, cost_eur,
     duration_ms, at)
VALUES (%(job_id)s, %(provider)s, %(model)s, %(outcome)s, %(prompt_tokens)s,
        %(completion_tokens)s, %(cost_eur)s, %(duration_ms)s, %(at)s)
"""
_MONTH_SPEND = """
SELECT COALESCE(sum(cost_eur), 0)::float8 AS spent
  FROM llm_calls
 WHERE at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
"""
_JOB_TOTALS = """
SELECT COALESCE(sum(prompt_tokens), 0)::bigint AS prompt_tokens,
       COALESCE(sum(completion_tokens), 0)::bigint AS completion_tokens,
       COALESCE(sum(cost_eur), 0)::float8 AS cost_eur,
       count(*) FILTER (WHERE outcome <> 'skipped') AS requests
  FROM llm_calls WHERE job_id = %s
"""
_FIELDS = (
    "provider",
    "model",
    "outcome",
    "prompt_tokens",
    "completion_tokens",
    "cost_eur",
    "duration_ms",
    "at",
)


async def insert_calls(
    conn: psycopg.AsyncConnection[Any],
    job_id: uuid.UUID | str | None,
    calls: Iterable[Mapping[str, Any]],
) -> int:
    """Record provider requests; each mapping has the ``llm_calls`` columns except ``job_id``."""
    rows = [{"job_id": job_id, **{key: call.get(key) for key in _FIELDS}} for call in calls]
    if not rows:
        return 0
    async with conn.cursor() as cursor:
        await cursor.executemany(_INSERT, rows)
    return len(rows)


async def month_spend_eur(conn: psycopg.AsyncConnection[Any]) -> float:
    """What every job spent on LLM providers this calendar month (UTC), in EUR."""
    cursor = await conn.execute(_MONTH_SPEND)
    row = await cursor.fetchone()
    return float(_value(row, "spent", 0))


async def job_totals(conn: psycopg.AsyncConnection[Any], job_id: uuid.UUID | str) -> dict[str, Any]:
    """Tokens, cost and request count of one job over all its attempts."""
    cursor = await conn.execute(_JOB_TOTALS, (job_id,))
    row = await cursor.fetchone()
    keys = ("prompt_tokens", "completion_tokens", "cost_eur", "requests")
    return {key: _value(row, key, i) for i, key in enumerate(keys)}


async def calls_of(conn: psycopg.AsyncConnection[Any], job_id: uuid.UUID | str) -> list[Any]:
    cursor = await conn.execute("SELECT * FROM llm_calls WHERE job_id = %s ORDER BY id", (job_id,))
    return list(await cursor.fetchall())


def _value(row: Any, key: str, index: int) -> Any:
    if row is None:
        return 0
    return row[key] if isinstance(row, dict) else row[index]
