"""The procrastinate App. The API defers by task NAME, so it never imports worker code."""

from __future__ import annotations

from typing import Any

import procrastinate
import psycopg_pool

from bi_engine import constants
from bi_engine.db.connection import connect_kwargs


def make_connector(database_url: str, schema: str, **pool_kwargs: Any) -> Any:
    """A psycopg connector whose connections see procrastinate's tables in ``schema``."""
    return procrastinate.PsycopgConnector(
        conninfo=database_url, kwargs=connect_kwargs(schema), **pool_kwargs
    )


def make_app(database_url: str, schema: str, **pool_kwargs: Any) -> procrastinate.App:
    return procrastinate.App(connector=make_connector(database_url, schema, **pool_kwargs))


async def open_app(app: procrastinate.App, pool: psycopg_pool.AsyncConnectionPool) -> None:
    """Run procrastinate over an existing pool (the API shares its pool with it)."""
    await app.open_async(pool=pool)


def procrastinate_priority(priority: str) -> int:
    return constants.PROCRASTINATE_PRIORITY[priority]
