"""Shared fixtures: a real PostgreSQL, a migrated template, a fresh database per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bi_engine.db import migrate
from bi_engine.settings import Settings
from tests import pg

TEST_SCHEMA = "bi"

# Quiet third-party background calls everywhere in the test run (see docs/operations.md).
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_DISABLE_VERSION_CHECK", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_TESTING", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")


_SERVER_USED: list[str] = []


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A maintenance-database URL on whichever server this run found (see tests/pg.py)."""
    with pg.server_url() as (url, how):
        _SERVER_USED.append(how)
        yield url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SERVER_USED:
        terminalreporter.write_line(f"PostgreSQL for this run: {_SERVER_USED[0]}")


@pytest.fixture(scope="session")
def template_database(pg_admin_url: str) -> Iterator[str]:
    """A database migrated once per run by the real migrations; tests clone it."""
    name = pg.unique_name("bi_tpl")
    url = pg.create_database(pg_admin_url, name)
    try:
        migrate.upgrade(url, TEST_SCHEMA)
        yield name
    finally:
        pg.drop_database(pg_admin_url, name)


@pytest.fixture
def database_url(pg_admin_url: str, template_database: str) -> Iterator[str]:
    """A fresh, migrated database for this test alone, dropped afterwards."""
    name = pg.unique_name("bi_test")
    url = pg.create_database(pg_admin_url, name, template=template_database)
    try:
        yield url
    finally:
        pg.drop_database(pg_admin_url, name)


@pytest.fixture
def empty_database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database with nothing in it (for migration tests)."""
    name = pg.unique_name("bi_empty")
    url = pg.create_database(pg_admin_url, name)
    try:
        yield url
    finally:
        pg.drop_database(pg_admin_url, name)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Development settings pointed at this test's database."""
    return Settings(database_url=database_url, db_schema=TEST_SCHEMA, environment="development")
