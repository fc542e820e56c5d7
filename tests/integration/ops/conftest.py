"""The real app (lifespan: pool, audit writer, limiter, live listener) driven over ASGI."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from starlette.applications import Starlette

from bi_engine.api.app import create_app
from bi_engine.constants import API_PREFIX
from bi_engine.settings import Settings

API = API_PREFIX
PEER = "127.0.0.1"  # httpx's ASGITransport presents the client as 127.0.0.1


@contextlib.asynccontextmanager
async def running(
    settings: Settings, *, redis_prefix: str | None = None, **updates: Any
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """An app for ``settings`` (with ``updates``) and a client, lifespan included."""
    app = create_app(settings.model_copy(update=updates), redis_prefix=redis_prefix)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bi.test") as client:
            yield app, client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(settings) as (_, http):
        yield http


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    async with running(settings) as pair:
        yield pair


async def flush_audit(app: Starlette) -> None:
    assert await app.state.engine.audit.flush(5.0), "audit rows not written in time"


def audit_rows(conn: psycopg.Connection[dict[str, Any]], **where: Any) -> list[dict[str, Any]]:
    clauses = " AND ".join(f"{key} = %({key})s" for key in where) or "true"
    query = f"SELECT * FROM audit_log WHERE {clauses} ORDER BY id"
    return list(conn.execute(query, where).fetchall())  # type: ignore[arg-type]


def finish(conn: psycopg.Connection[Any], job_id: str | uuid.UUID, report: str = "# Done") -> None:
    """What a worker does at the end of a job (no worker runs in these tests)."""
    conn.execute(
        "UPDATE analyses SET status = 'running', started_at = now(), attempts = 1 WHERE id = %s",
        (job_id,),
    )
    conn.execute(
        "UPDATE analyses SET status = 'completed', finished_at = now(), progress = 100,"
        " result = '{\"analysis\": {}}', report_markdown = %s WHERE id = %s",
        (report, job_id),
    )


def block(admin_url: str, dbname: str, *, allow: bool) -> None:
    """Make the database refuse (and drop) every connection, or accept them again."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(dbname), sql.SQL("true" if allow else "false")
            )
        )
        if not allow:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )
