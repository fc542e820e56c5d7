"""``bi-engine callbacks list|replay``: inspect and resend callbacks that were given up."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.console import Console
from rich.table import Table

from bi_engine import queue
from bi_engine.db import connection
from bi_engine.db import webhooks as webhook_rows
from bi_engine.settings import load_settings
from bi_engine.webhooks import enqueue


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("callbacks", help="callback dead letters: list or replay")
    actions = parser.add_subparsers(dest="action", required=True)
    for name, text in (("list", "show dead letters"), ("replay", "send dead letters again")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--job", help="only this job id")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    url = settings.require_database_url()
    conn = await connection.connect(url, settings.db_schema)
    try:
        if args.action == "list":
            _print(await webhook_rows.dead_letters(conn, args.job))
            return 0
        app = queue.make_app(url, settings.db_schema)
        async with app.open_async():
            count = await enqueue.replay_dead_letters(app, conn, args.job)
        print(f"queued {count} callback deliveries again")
        return 0
    finally:
        await conn.close()


def _print(rows: list[dict[str, Any]]) -> None:
    table = Table("job", "event", "url", "attempts", "given up at")
    for row in rows:
        table.add_row(
            str(row["job_id"]),
            row["event"],
            row["url"],
            str(row["attempt"]),
            row["created_at"].isoformat(),
        )
    Console().print(table if rows else "no dead letters")
