"""``bi-engine migrate``: alembic upgrade to head (idempotent), or ``--sql`` to print it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bi_engine.db import migrate
from bi_engine.settings import load_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "migrate", help="create or upgrade the engine's schema (idempotent)"
    )
    parser.add_argument("--sql", action="store_true", help="print the SQL, touch no database")
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.add_argument(
        "--downgrade", action="store_true", help="downgrade to --revision (default: base)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.sql:
        sys.stdout.write(migrate.upgrade_sql(settings.db_schema, args.revision))
        return 0
    url = settings.require_database_url()
    if args.downgrade:
        target = "base" if args.revision == "head" else args.revision
        migrate.downgrade(url, settings.db_schema, target)
    else:
        migrate.upgrade(url, settings.db_schema, args.revision)
    print(f"schema {settings.db_schema!r} at {migrate.current(url, settings.db_schema)}")
    return 0
