"""Fixtures for in-process worker tests on a fresh database: a connection, the App, a pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import procrastinate
import psycopg
import psycopg_pool
import pytest

from bi_engine.db import connection
from bi_engine.settings import Settings
from workers import app as worker_app
from workers import pipeline, runners


@pytest.fixture
async def conn(settings: Settings) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An autocommit connection for submitting and reading back."""
    db = await connection.connect(settings.require_database_url(), settings.db_schema)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[psycopg_pool.AsyncConnectionPool[Any]]:
    async with worker_app.make_pool(settings, 6) as opened:
        yield opened


@pytest.fixture
async def app(
    settings: Settings, pool: psycopg_pool.AsyncConnectionPool[Any]
) -> AsyncIterator[procrastinate.App]:
    """The worker's App (every task registered), opened over the test pool."""
    built = worker_app.build_app(settings)
    async with built.open_async(pool=pool):
        yield built


@pytest.fixture
def deps(settings: Settings, pool: psycopg_pool.AsyncConnectionPool[Any]) -> pipeline.Deps:
    return pipeline.Deps(
        settings=settings,
        pool=pool,
        registry=runners.default_registry(extensions=()),
        watch_interval_s=0.1,
        progress_interval_s=0.1,
    )
