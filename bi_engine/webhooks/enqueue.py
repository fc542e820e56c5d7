"""Queue a callback delivery inside the transaction that ends the job.

Deferring by task name on the caller's connection means the job's terminal state and its
callback job commit together: no terminal job without its callback, and no callback for a
state that was rolled back.
"""

from __future__ import annotations

import uuid
from typing import Any

import procrastinate
import psycopg

from bi_engine import constants
from bi_engine.db import webhooks as webhook_rows

TERMINAL_EVENTS = ("completed", "failed", "cancelled")


async def defer_delivery(
    app: procrastinate.App,
    conn: psycopg.AsyncConnection[Any],
    job_id: uuid.UUID | str,
    event: str,
    attempt: int = 1,
    *,
    delay_s: float | None = None,
) -> None:
    """Defer ``bi.deliver_callback`` for ``job_id``; ``delay_s`` schedules a retry."""
    if event not in TERMINAL_EVENTS:
        raise ValueError(f"callbacks are sent for {TERMINAL_EVENTS}, not {event!r}")
    options: dict[str, Any] = {"connection": conn, "queue": constants.QUEUE_CALLBACKS}
    if delay_s is not None:
        options["schedule_in"] = {"seconds": max(0, round(delay_s))}
    deferrer = app.configure_task(constants.TASK_DELIVER_CALLBACK, **options)
    await deferrer.defer_async(job_id=str(job_id), event=event, attempt=attempt)


async def on_terminal(
    app: procrastinate.App,
    conn: psycopg.AsyncConnection[Any],
    job_id: uuid.UUID | str,
    event: str,
    callback_url: str | None,
) -> bool:
    """Queue the first delivery when the job has a callback_url; True when one was queued."""
    if not callback_url:
        return False
    await defer_delivery(app, conn, job_id, event)
    return True


async def replay_dead_letters(
    app: procrastinate.App, conn: psycopg.AsyncConnection[Any], job_id: str | None = None
) -> int:
    """Queue a fresh delivery (attempt numbering continues) for every dead letter."""
    letters = await webhook_rows.dead_letters(conn, job_id)
    async with conn.transaction():
        for letter in letters:
            await defer_delivery(
                app, conn, letter["job_id"], letter["event"], letter["attempt"] + 1
            )
    return len(letters)
