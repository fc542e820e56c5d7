"""The real app (lifespan included) over the per-test database, driven by httpx."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb
from starlette.applications import Starlette

from bi_engine.api.app import create_app
from bi_engine.constants import API_PREFIX
from bi_engine.settings import Settings

API = API_PREFIX


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    # many submissions per user here; the limits have their own tests (tests/integration/ops)
    application = create_app(settings.model_copy(update={"rate_limits": False}))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bi.test") as http:
        yield http


def finish(
    conn: psycopg.Connection[Any],
    job_id: str | uuid.UUID,
    status: str = "completed",
    *,
    result: dict[str, Any] | None = None,
    report: str | None = None,
    error: tuple[str, str] | None = None,
) -> None:
    """Do what a worker does at the end of a job (no worker runs in these tests)."""
    conn.execute(
        "UPDATE analyses SET status = 'running', started_at = now(), attempts = 1 WHERE id = %s",
        (job_id,),
    )
    code, message = error or (None, None)
    conn.execute(
        "UPDATE analyses SET status = %s, finished_at = now(), progress = 100, result = %s,"
        " report_markdown = %s, error_code = %s, error_message = %s WHERE id = %s",
        (status, Jsonb(result) if result is not None else None, report, code, message, job_id),
    )


def start(conn: psycopg.Connection[Any], job_id: str | uuid.UUID) -> None:
    conn.execute(
        "UPDATE analyses SET status = 'running', started_at = now(), attempts = 1 WHERE id = %s",
        (job_id,),
    )
    conn.execute(
        "UPDATE procrastinate_jobs SET status = 'doing' WHERE id ="
        " (SELECT procrastinate_job_id FROM analyses WHERE id = %s)",
        (job_id,),
    )
