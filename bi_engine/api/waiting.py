"""``Prefer: wait=N``: hold a submission's answer until the job ends or N seconds pass.

Polls the job's status row a few times per second (a primary-key read on a pooled
connection, held only for that read), so waiting clients never pin connections.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any, Final

import psycopg_pool

from bi_engine import constants
from bi_engine.db import analyses

MAX_WAIT_S: Final = 60
POLL_S: Final = 0.15
_WAIT: Final = re.compile(r"^\s*wait\s*=\s*\"?(\d{1,6})\"?\s*$", re.IGNORECASE)


def preferred_wait(prefer: str | None) -> int | None:
    """Seconds asked for by ``Prefer: wait=N``, capped at 60.

    As RFC 7240 asks, a preference the server does not understand (``wait=abc``, ``wait=-1``)
    is ignored rather than refused.
    """
    if not prefer:
        return None
    for preference in prefer.split(","):
        match = _WAIT.match(preference.split(";")[0])
        if match:
            return min(int(match.group(1)), MAX_WAIT_S)
    return None


async def until_finished(
    pool: psycopg_pool.AsyncConnectionPool[Any], job_id: uuid.UUID, timeout_s: float
) -> dict[str, Any] | None:
    """The job row with its result once it is terminal; None if still going at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        async with pool.connection() as conn:
            status = await analyses.status_of(conn, job_id)
            if status in constants.TERMINAL_STATUSES:
                return await analyses.get_result(conn, job_id)
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        await asyncio.sleep(min(POLL_S, remaining))
