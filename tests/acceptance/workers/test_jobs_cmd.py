"""``bi-engine jobs list|show|cancel|retry`` as an operator runs it, on the test database."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import Any

import procrastinate
import psycopg
import pytest

from bi_engine.settings import Settings
from tests.acceptance.workers.conftest import _command
from tests.integration.workers import support

pytestmark = pytest.mark.acceptance

Conn = psycopg.AsyncConnection[Any]


async def _cli(database_url: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "BI_DB_SCHEMA": "bi", "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(
        *_command(),
        "jobs",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_list_and_show(
    conn: Conn, app: procrastinate.App, settings: Settings, database_url: str
) -> None:
    first = await support.submit_job(conn, app, settings, user="alice")
    second = await support.submit_job(conn, app, settings, user="bob", priority="high")

    code, out, _ = await _cli(database_url, "list", "--json")
    assert code == 0
    listed = [json.loads(line) for line in out.splitlines()]
    assert [row["id"] for row in listed] == [str(second), str(first)]
    assert {row["queue_status"] for row in listed} == {"todo"}

    code, out, _ = await _cli(database_url, "list", "--user", "alice", "--json")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [str(first)]

    code, out, _ = await _cli(database_url, "list")
    assert code == 0
    assert str(second)[:8] in out

    code, out, _ = await _cli(database_url, "show", str(second), "--json")
    shown = json.loads(out)
    assert (shown["priority"], shown["queue_priority"], shown["queue_status"]) == (
        "high",
        20,
        "todo",
    )
    assert [e["kind"] for e in shown["events"]] == ["status"]


async def test_cancel_then_retry_and_refusals(
    conn: Conn, app: procrastinate.App, settings: Settings, database_url: str
) -> None:
    job_id = await support.submit_job(conn, app, settings)

    code, out, _ = await _cli(database_url, "cancel", str(job_id))
    assert (code, out.strip()) == (0, f"{job_id}: cancelled")
    assert (await support.row(conn, job_id))["status"] == "cancelled"

    code, out, _ = await _cli(database_url, "retry", str(job_id))
    assert (code, out.strip()) == (0, f"{job_id}: queued again")
    assert [j["status"] for j in await support.queue_jobs(conn, job_id)] == ["cancelled", "todo"]

    code, _, err = await _cli(database_url, "retry", str(job_id))
    assert code == 2
    assert "Only failed or cancelled jobs can be retried" in err

    code, _, err = await _cli(database_url, "show", str(uuid.uuid4()))
    assert code == 2
    assert "No job" in err
    cursor = await conn.execute(
        "SELECT result FROM audit_log WHERE action IN ('analysis_cancelled', 'analysis_retried')"
        " ORDER BY id"
    )
    assert [r["result"] for r in await cursor.fetchall()] == ["cancelled", "queued"]
