"""``bi-engine jobs list|show|cancel|retry``: operators' view of the queue, on the database.

Cancel and retry are the same use cases as the HTTP API's (``bi_engine.control``), acting as
an operator: every job, audited with ``operator: true``.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import datetime
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from bi_engine import constants, control, queue
from bi_engine.db import connection, job_runs
from bi_engine.db import events as event_log
from bi_engine.domain.jobs import JobNotFound
from bi_engine.logging import configure_logging
from bi_engine.settings import load_settings

_LIST_COLUMNS = ("id", "type", "status", "priority", "user_id", "progress", "attempts")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("jobs", help="list, show, cancel or retry jobs (operators)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="newest jobs first")
    listing.add_argument("--status", choices=constants.STATUSES)
    listing.add_argument("--type", choices=constants.ANALYSIS_TYPES)
    listing.add_argument("--user", help="only this user's jobs")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = actions.add_parser("show", help="one job with its queue state and event log")
    show.add_argument("job_id", type=uuid.UUID)
    show.add_argument("--events", type=int, default=50, help="how many events (0: none)")
    show.add_argument("--json", action="store_true")
    for name, text in (
        ("cancel", "queued: cancelled at once; running: aborted at the next step"),
        ("retry", "queue a failed or cancelled job again"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("job_id", type=uuid.UUID)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings)  # log lines to stderr; stdout carries the command's output
    url = settings.require_database_url()
    conn = await connection.connect(url, settings.db_schema, application_name="bi-engine-jobs")
    try:
        if args.action == "list":
            return await _list(conn, args)
        if args.action == "show":
            return await _show(conn, args)
        app = queue.make_app(url, settings.db_schema)
        actor = control.Actor()
        if args.action == "cancel":
            cancelled = await control.cancel(conn, app, args.job_id, actor)
            print(f"{args.job_id}: {cancelled.outcome.replace('_', ' ')}")
        else:
            row = await control.retry(conn, app, args.job_id, actor)
            print(f"{args.job_id}: {row['status']} again")
        return 0
    finally:
        await conn.close()


async def _list(conn: Any, args: argparse.Namespace) -> int:
    rows = await job_runs.list_jobs(
        conn, status=args.status, type=args.type, user_id=args.user, limit=max(1, args.limit)
    )
    if args.json:
        for row in rows:
            print(_json(row))
        return 0
    table = Table(*_LIST_COLUMNS, "step", "error", "created")
    for row in rows:
        table.add_row(
            *(str(row[column]) for column in _LIST_COLUMNS),
            row["current_step"] or "",
            row["error_code"] or "",
            _when(row["created_at"]),
        )
    Console().print(table if rows else "no jobs")
    return 0


async def _show(conn: Any, args: argparse.Namespace) -> int:
    row = await job_runs.show(conn, args.job_id)
    if row is None:
        raise JobNotFound(f"No job {args.job_id}.")
    events = await event_log.read_after(conn, args.job_id, 0, max(0, args.events))
    if args.json:
        print(_json({**row, "events": events}))
        return 0
    console = Console()
    details = Table("field", "value", show_header=False)
    for key, value in row.items():
        if value is not None:
            details.add_row(key, _when(value) if isinstance(value, datetime) else str(value))
    console.print(details)
    if events:
        log = Table("seq", "kind", "at", "data")
        for event in events:
            data = orjson.dumps(event["data"]).decode()
            log.add_row(str(event["seq"]), event["kind"], _when(event["created_at"]), data)
        console.print(log)
    return 0


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def _json(row: dict[str, Any]) -> str:
    return orjson.dumps(row, default=str).decode()
