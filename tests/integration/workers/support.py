"""Helpers for the worker tests: submit through the real use case, read the job back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import procrastinate
import psycopg

from bi_engine import submit
from bi_engine.auth.principal import Principal
from bi_engine.domain.submission import AnalysisRequest
from bi_engine.settings import Settings

Conn = psycopg.AsyncConnection[Any]


async def submit_job(
    conn: Conn,
    app: procrastinate.App,
    settings: Settings,
    *,
    data: dict[str, Any] | None = None,
    user: str = "user-1",
    priority: str = "normal",
    type: str = "test",
    callback_url: str | None = None,
) -> uuid.UUID:
    """``create_job`` exactly as the API calls it (the data shape is not re-checked here,
    so tests can hand the worker data the API would refuse)."""
    document: dict[str, Any] = {"type": type, "data": data or {}, "priority": priority}
    if callback_url:
        document["callback_url"] = callback_url
    request = AnalysisRequest.model_validate(document)
    caller = submit.Caller(principal=Principal(user_id=user))
    submitted = await submit.create_job(conn, app, settings, caller, request)
    return submitted.job_id


async def row(conn: Conn, job_id: uuid.UUID) -> dict[str, Any]:
    cursor = await conn.execute("SELECT * FROM analyses WHERE id = %s", (job_id,))
    found = await cursor.fetchone()
    assert found is not None
    return dict(found)


async def events(conn: Conn, job_id: uuid.UUID) -> list[dict[str, Any]]:
    cursor = await conn.execute(
        "SELECT seq, kind, data, created_at FROM analysis_events WHERE job_id = %s ORDER BY seq",
        (job_id,),
    )
    return [dict(r) for r in await cursor.fetchall()]


async def statuses(conn: Conn, job_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    cursor = await conn.execute(
        "SELECT id, status FROM analyses WHERE id = ANY(%s)", (list(job_ids),)
    )
    return {r["id"]: r["status"] for r in await cursor.fetchall()}


async def queue_jobs(conn: Conn, job_id: uuid.UUID) -> list[dict[str, Any]]:
    cursor = await conn.execute(
        "SELECT id, status::text AS status, attempts, priority, worker_id FROM procrastinate_jobs"
        " WHERE task_name = 'bi.run_analysis' AND args ->> 'job_id' = %s ORDER BY id",
        (str(job_id),),
    )
    return [dict(r) for r in await cursor.fetchall()]


async def settled_queue_jobs(
    conn: Conn, job_id: uuid.UUID, *, timeout: float = 10
) -> list[dict[str, Any]]:
    """The queue jobs of an analysis once none is ``todo`` or ``doing`` any more.

    A worker ends the analysis in its own transaction, then procrastinate records the
    outcome of its queue job in another: right after the analysis turns terminal, the
    queue job may still read ``doing`` for a moment.
    """

    async def check() -> list[dict[str, Any]] | None:
        found = await queue_jobs(conn, job_id)
        return None if any(j["status"] in ("todo", "doing") for j in found) else found

    result: list[dict[str, Any]] = await wait_until(
        check, timeout=timeout, what=f"the queue jobs of {job_id} to settle"
    )
    return result


async def wait_until(
    check: Callable[[], Awaitable[Any]], *, timeout: float, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        await asyncio.sleep(interval)


async def wait_status(
    conn: Conn, job_id: uuid.UUID, wanted: str | tuple[str, ...], *, timeout: float
) -> dict[str, Any]:
    wanted_set = (wanted,) if isinstance(wanted, str) else wanted

    async def check() -> dict[str, Any] | None:
        found = await row(conn, job_id)
        return found if found["status"] in wanted_set else None

    result: dict[str, Any] = await wait_until(check, timeout=timeout, what=f"{job_id} {wanted}")
    return result


async def wait_event(
    conn: Conn, job_id: uuid.UUID, predicate: Callable[[dict[str, Any]], bool], *, timeout: float
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        return next((e for e in await events(conn, job_id) if predicate(e)), None)

    found: dict[str, Any] = await wait_until(check, timeout=timeout, what=f"event of {job_id}")
    return found


def assert_gap_free(log: list[dict[str, Any]]) -> None:
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))


def kinds(log: list[dict[str, Any]]) -> list[str]:
    """Event kinds with the status word for status events, e.g. ``status:running``."""
    return [f"status:{e['data']['status']}" if e["kind"] == "status" else e["kind"] for e in log]


def terminal_count(log: list[dict[str, Any]]) -> int:
    return sum(1 for e in log if e["kind"] in ("completed", "failed", "cancelled"))
