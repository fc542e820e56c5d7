"""Where the test suite finds PostgreSQL, and throwaway databases cloned from a template.

Order: ``DATABASE_URL``; a server on 127.0.0.1:5432 (``BI_TEST_PG_PROBE`` overrides the
address, e.g. ``127.0.0.1:1`` to force the fallbacks); testcontainers when Docker works;
else the embedded ``pgserver``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

PROBE_DEFAULT = "127.0.0.1:5432"


def with_dbname(url: str, dbname: str) -> str:
    """The same server, another database."""
    if "://" in url:
        parts = urlsplit(url)
        return urlunsplit(parts._replace(path="/" + dbname))
    params = psycopg.conninfo.conninfo_to_dict(url)
    params["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]


def dbname(url: str) -> str:
    """The database name of a URL or conninfo string (works for socket URLs too)."""
    return str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])


def _port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def _docker_works() -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # docker's probe socket on failure
        try:
            import docker  # type: ignore[import-untyped]

            client = docker.from_env()
            try:
                client.ping()
            finally:
                client.close()
        except Exception:
            return False
        gc.collect()
    return True


@contextlib.contextmanager
def server_url() -> Iterator[tuple[str, str]]:
    """Yield ``(admin_url, how)``: a URL to a maintenance database on a usable server."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"], "DATABASE_URL"
        return
    probe = os.environ.get("BI_TEST_PG_PROBE", PROBE_DEFAULT)
    if _port_open(probe):
        yield f"postgresql://postgres@{probe}/postgres", f"local server {probe}"
        return
    if _docker_works():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url(), "testcontainers"
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver

    with tempfile.TemporaryDirectory(prefix="bi-test-pg-") as datadir:
        server = pgserver.get_server(  # type: ignore[attr-defined]
            datadir, cleanup_mode="stop"
        )
        try:
            yield server.get_uri(), "embedded pgserver"
        finally:
            server.cleanup()


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(statement)
    return with_dbname(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"
