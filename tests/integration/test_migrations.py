"""The real migrations: up, down, up again; idempotent; the --sql rendering."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from bi_engine.db import migrate

pytestmark = pytest.mark.integration

ENGINE_TABLES = {
    "analyses",
    "analysis_inputs",
    "analysis_events",
    "audit_log",
    "templates",
    "idempotency_keys",
    "webhook_deliveries",
    "rate_limit_hits",
    "llm_calls",
    "agent_tasks",
    "llm_circuits",
}
PROCRASTINATE_TABLES = {
    "procrastinate_jobs",
    "procrastinate_events",
    "procrastinate_workers",
    "procrastinate_periodic_defers",
}
VIEWS = {"report_analyses", "report_daily", "report_agents", "report_llm_usage"}


def _relations(url: str, schema: str, kind: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = %s",
            (schema, kind),
        ).fetchall()
    return {row[0] for row in rows}


def test_up_down_up(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url, "bi")
    assert _relations(empty_database_url, "bi", "r") >= ENGINE_TABLES | PROCRASTINATE_TABLES
    assert _relations(empty_database_url, "bi", "v") == VIEWS

    migrate.downgrade(empty_database_url, "bi")
    assert _relations(empty_database_url, "bi", "r") == {"alembic_version"}
    assert _relations(empty_database_url, "bi", "v") == set()

    migrate.upgrade(empty_database_url, "bi")
    assert _relations(empty_database_url, "bi", "r") >= ENGINE_TABLES | PROCRASTINATE_TABLES
    assert "(head)" in migrate.current(empty_database_url, "bi")


def test_cli_migrate_twice_is_idempotent(empty_database_url: str) -> None:
    env = {"DATABASE_URL": empty_database_url, "PATH": "/usr/bin:/bin"}
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "bi_engine", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "0003_llm_circuits (head)" in done.stdout


def test_custom_schema_holds_everything(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url, "analytics_bi")
    assert (
        _relations(empty_database_url, "analytics_bi", "r") >= ENGINE_TABLES | PROCRASTINATE_TABLES
    )
    assert _relations(empty_database_url, "public", "r") == set()


def test_sql_rendering_needs_no_database() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bi_engine", "migrate", "--sql"],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "CREATE TABLE bi.analyses" in done.stdout
    assert "CREATE TABLE procrastinate_jobs" in done.stdout
    assert done.stdout.rstrip().endswith("COMMIT;")
