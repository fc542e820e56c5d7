"""SQL for ``agent_tasks``: one row per Processing Task an AI Assistant finished or failed.

The saved outputs let a retried job resume after its last completed task.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

_INSERT = """
INSERT INTO agent_tasks
    (job_id, attempt, agent, task, status, started_at, finished_at, output,
     prompt_tokens, completion_tokens)
VALUES (%(job_id)s, %(attempt)s, %(agent)s, %(task)s, %(status)s, %(started_at)s,
        %(finished_at)s, %(output)s, %(prompt_tokens)s, %(completion_tokens)s)
RETURNING id
"""
_COMPLETED = """
SELECT DISTINCT ON (task) task, agent, attempt, output, finished_at,
       prompt_tokens, completion_tokens
  FROM agent_tasks
 WHERE job_id = %s AND status = 'completed'
 ORDER BY task, finished_at DESC, id DESC
"""


async def record(
    conn: psycopg.AsyncConnection[Any],
    *,
    job_id: uuid.UUID | str,
    attempt: int,
    agent: str,
    task: str,
    status: str,
    started_at: datetime,
    finished_at: datetime | None,
    output: dict[str, Any] | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> int:
    """One finished (``completed`` or ``failed``) Processing Task with its output."""
    values = {
        "job_id": job_id,
        "attempt": max(attempt, 1),
        "agent": agent,
        "task": task,
        "status": status,
        "started_at": started_at,
        "finished_at": finished_at,
        "output": Jsonb(output) if output is not None else None,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
    }
    cursor = await conn.execute(_INSERT, values)
    row = await cursor.fetchone()
    if row is None:
        raise LookupError("agent_tasks insert returned no row")
    return int(row["id"] if isinstance(row, dict) else row[0])


async def completed(
    conn: psycopg.AsyncConnection[Any], job_id: uuid.UUID | str
) -> dict[str, dict[str, Any]]:
    """The latest completed output per task of a job, by task key (to resume a retry)."""
    cursor = await conn.execute(_COMPLETED, (job_id,))
    out: dict[str, dict[str, Any]] = {}
    for row in await cursor.fetchall():
        item = dict(row) if isinstance(row, dict) else dict(zip(_COLUMNS, row, strict=False))
        out[str(item["task"])] = item
    return out


async def of_job(conn: psycopg.AsyncConnection[Any], job_id: uuid.UUID | str) -> list[Any]:
    cursor = await conn.execute(
        "SELECT * FROM agent_tasks WHERE job_id = %s ORDER BY id", (job_id,)
    )
    return list(await cursor.fetchall())


_COLUMNS = (
    "task",
    "agent",
    "attempt",
    "output",
    "finished_at",
    "prompt_tokens",
    "completion_tokens",
)
