"""Apply procrastinate's SQL inside the engine's schema and follow its upgrades.

The first revision applies the ``schema.sql`` shipped by the installed procrastinate and
records its version in ``<schema>.schema_components``. When procrastinate is upgraded,
add a revision whose ``upgrade()`` calls :func:`apply_pending_migrations`: it runs the
``sql/migrations/*.sql`` files newer than the recorded version (pre and post files in
order), so a database created by an older schema.sql catches up and a fresh one created by
the newer schema.sql skips them.
"""

from __future__ import annotations

import re
from importlib import metadata, resources
from pathlib import Path

from bi_engine.migrations import sqltext

_FILE_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)_")


def installed_version() -> tuple[int, int, int]:
    major, minor, patch = ([*metadata.version("procrastinate").split("."), "0", "0"])[:3]
    return int(major), int(minor), int(re.sub(r"\D.*$", "", patch) or 0)


def schema_sql() -> str:
    return (resources.files("procrastinate.sql") / "schema.sql").read_text(encoding="utf-8")


def migration_files() -> list[tuple[tuple[int, int, int], Path]]:
    folder = Path(str(resources.files("procrastinate.sql") / "migrations"))
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_VERSION.match(path.name)
        if match:
            found.append(((int(match[1]), int(match[2]), int(match[3])), path))
    return found


def in_schema(sql: str) -> str:
    """Wrap SQL so that its unqualified names land in the engine's schema."""
    return (
        'SET LOCAL search_path TO "__SCHEMA__", public;\n'
        + sql
        + "\nSET LOCAL search_path TO DEFAULT;"
    )


def apply_schema() -> None:
    version = ".".join(str(part) for part in installed_version())
    sqltext.execute(in_schema(schema_sql()))
    sqltext.execute(
        "CREATE TABLE IF NOT EXISTS __SCHEMA__.schema_components ("
        " component text PRIMARY KEY, version text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now());\n"
        "INSERT INTO __SCHEMA__.schema_components (component, version) "
        f"VALUES ('procrastinate', '{version}') "
        "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, applied_at = now();"
    )


def apply_pending_migrations(recorded: tuple[int, int, int]) -> None:
    """Run procrastinate's migration files newer than ``recorded`` (see module docstring)."""
    target = installed_version()
    for version, path in migration_files():
        if recorded < version <= target:
            sqltext.execute(in_schema(path.read_text(encoding="utf-8")))
    sqltext.execute(
        "UPDATE __SCHEMA__.schema_components SET version = '"
        + ".".join(str(part) for part in target)
        + "', applied_at = now() WHERE component = 'procrastinate';"
    )


DROP_SQL = """
DROP TABLE IF EXISTS __SCHEMA__.procrastinate_events, __SCHEMA__.procrastinate_periodic_defers,
    __SCHEMA__.procrastinate_jobs, __SCHEMA__.procrastinate_workers CASCADE;
DO $$
DECLARE fn record;
BEGIN
    FOR fn IN
        SELECT p.oid::regprocedure AS signature FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = '__SCHEMA__' AND p.proname LIKE 'procrastinate%'
    LOOP
        EXECUTE 'DROP FUNCTION IF EXISTS ' || fn.signature || ' CASCADE';
    END LOOP;
END $$;
DROP TYPE IF EXISTS __SCHEMA__.procrastinate_job_to_defer_v1,
    __SCHEMA__.procrastinate_job_event_type, __SCHEMA__.procrastinate_job_status CASCADE;
DROP TABLE IF EXISTS __SCHEMA__.schema_components;
"""


def drop_schema() -> None:
    sqltext.execute(DROP_SQL)
