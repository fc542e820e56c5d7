"""``bi-engine demo``: embedded PostgreSQL (unless DATABASE_URL), migrate, API + worker,
submit the bundled samples, live progress, the reports, then what to open next."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from bi_engine.auth import tokens
from bi_engine.db import migrate
from bi_engine.demo import embedded, processes, show
from bi_engine.settings import Settings, load_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole engine locally and analyse the bundled samples"
    )
    parser.add_argument("--port", type=int, default=8000, help="API port (a free one if taken)")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(".bi-engine"), help="embedded data and logs"
    )
    parser.add_argument("--samples", nargs="+", choices=show.SAMPLES, default=list(show.SAMPLES))
    parser.add_argument(
        "--keep-running", action="store_true", help="keep API and worker up until Ctrl-C"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # SIGTERM (``kill``, a supervisor) unwinds like Ctrl-C: children and the embedded
    # PostgreSQL are stopped rather than left running.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    console = Console()
    with _database(settings, args.data_dir, console) as database_url:
        console.print(f"Migrating schema [bold]{settings.db_schema}[/] ...")
        migrate.upgrade(database_url, settings.db_schema)
        port = processes.free_port(args.port)
        base_url = f"http://127.0.0.1:{port}"
        env = _child_env(settings, database_url, args.data_dir)
        logs = args.data_dir / "logs"
        with (
            processes.child(
                "api", ["serve", "--host", "127.0.0.1", "--port", str(port)], env, logs
            ) as api_log,
            processes.child("worker", ["worker", "--concurrency", "2"], env, logs),
        ):
            processes.wait_healthy(base_url, api_log)
            console.print(f"API on {base_url}, worker started (logs in {logs}/)")
            token = tokens.mint_user_token(
                settings, user_id="demo", email="demo@pilotpros.local", role="admin", ttl_s=86400
            )
            jobs = asyncio.run(show.run_samples(base_url, token, console, tuple(args.samples)))
            asyncio.run(show.print_reports(base_url, token, jobs, console))
            show.print_next_steps(console, base_url, token, database_url, settings.db_schema)
            if args.keep_running:
                _wait_for_interrupt(console)
            else:
                console.print(
                    "The API, the worker and the embedded PostgreSQL stop now: to use the"
                    " links above, run [bold]bi-engine demo --keep-running[/] (Ctrl-C stops it)."
                )
        failed = [job for job in jobs if job["status"] != "completed"]
    return 1 if failed else 0


@contextlib.contextmanager
def _database(settings: Settings, data_dir: Path, console: Console) -> Iterator[str]:
    if settings.database_url:
        yield settings.database_url
        return
    console.print(f"No DATABASE_URL: starting an embedded PostgreSQL in {data_dir}/pgdata ...")
    with embedded.embedded_postgres(data_dir.resolve() / "pgdata") as url:
        yield url


def _child_env(settings: Settings, database_url: str, data_dir: Path) -> dict[str, str]:
    home = (data_dir / "home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    return os.environ | {
        "DATABASE_URL": database_url,
        "BI_DB_SCHEMA": settings.db_schema,
        "JWT_SECRET": settings.jwt_secret,
        "CREWAI_STORAGE_DIR": str(home / "crewai"),
        "XDG_DATA_HOME": str(home / "share"),
    }


def _wait_for_interrupt(console: Console) -> None:
    console.print("Running; press Ctrl-C to stop.")
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            asyncio.run(asyncio.sleep(3600))
