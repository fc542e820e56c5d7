"""``bi-engine worker``: registered through the ``bi_engine.commands`` entry point."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

from bi_engine.logging import configure_logging
from bi_engine.settings import load_settings
from workers import app


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker", help="run a worker: claims analyses, runs them, recovers stalled ones"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="jobs run at once (default: BI_WORKER_CONCURRENCY, 4)",
    )
    parser.add_argument(
        "--queues",
        nargs="+",
        default=None,
        metavar="QUEUE",
        help=f"queues to take jobs from (default: {' '.join(app.JOB_QUEUES)}); "
        "a separate single-slot lane always runs the maintenance queue",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=app.DEFAULT_SHUTDOWN_GRACE_S,
        metavar="SECONDS",
        help="on SIGTERM, how long running jobs may finish before they are handed back",
    )
    parser.add_argument("--name", default="bi-worker", help="worker name shown in logs")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    overrides = {} if args.concurrency is None else {"worker_concurrency": args.concurrency}
    settings = load_settings(**overrides)
    settings.require_database_url()
    configure_logging(settings)
    queues = _split(args.queues) if args.queues else app.JOB_QUEUES
    options = app.WorkerOptions(
        concurrency=settings.worker_concurrency,
        queues=queues,
        shutdown_grace_s=max(0.0, args.shutdown_grace),
        name=args.name,
    )
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(app.run_worker(settings, options))
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it comes with uvicorn[standard]): less CPU per job."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of uvicorn[standard]
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _split(values: list[str]) -> tuple[str, ...]:
    """Accept ``--queues a b`` and ``--queues a,b``."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())
