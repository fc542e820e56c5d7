"""The worker's composition root: one pool, the procrastinate App, the tasks, the workers.

A worker process runs two procrastinate workers over one connection pool: the job lane
(``analyses`` and ``callbacks`` by default, ``--concurrency`` jobs at once) and a
maintenance lane with one slot, so recovery and promotion still run while every job slot
is busy with a long analysis. SIGTERM stops both from claiming, gives running jobs the
grace period, then hands back what has not finished (it is queued again at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import procrastinate
import psycopg
import psycopg_pool
from procrastinate import worker as procrastinate_worker
from psycopg.rows import dict_row

from bi_engine import constants, queue
from bi_engine.db.connection import connect_kwargs
from bi_engine.logging import get_logger
from bi_engine.settings import Settings
from bi_engine.webhooks import enqueue
from workers import maintenance, pipeline, progress, retry, runners, tasks
from workers import metrics as worker_metrics

TASK_RECOVER_STALLED: Final = "bi.maintenance.recover_stalled"
TASK_PROMOTE_STARVED: Final = "bi.maintenance.promote_starved"
TASK_PRUNE: Final = "bi.maintenance.prune"
JOB_QUEUES: Final = (constants.QUEUE_ANALYSES, constants.QUEUE_CALLBACKS)
DEFAULT_SHUTDOWN_GRACE_S: Final = 8.0
LANE_RESTART_MIN_S: Final = 0.5
LANE_RESTART_MAX_S: Final = 5.0
"""Backoff between attempts to start the lanes again after they ended on their own."""
FETCH_POLL_S: Final = 1.0
"""Upper bound on how late a retry whose backoff has passed is picked up."""

# Offline, quiet crewai/litellm in the worker (crewai writes under HOME at import);
# workers.crew completes this (storage folder) before it imports crewai.
CREWAI_ENVIRONMENT: Final = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}
# procrastinate's own line per job outcome; the pipeline writes one line per state change
_QUIET_ACTIONS: Final = frozenset(
    {"job_success", "job_error", "job_error_retry", "job_aborted", "job_aborted_retry"}
)

log = get_logger("bi.worker")


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    concurrency: int
    queues: tuple[str, ...] = JOB_QUEUES
    shutdown_grace_s: float = DEFAULT_SHUTDOWN_GRACE_S
    name: str = "bi-worker"
    maintenance_lane: bool = True
    fair_share: int = maintenance.FAIR_SHARE
    watch_interval_s: float = 0.5
    progress_interval_s: float = progress.DEFAULT_INTERVAL_S


def every(seconds: float) -> str:
    """A cron expression for a period; below a minute croniter's seconds field (the 6th,
    LAST one: ``minute hour day month weekday second``)."""
    period = max(1, round(seconds))
    if period < 60:
        return f"* * * * * */{period}"
    return f"*/{max(1, min(59, round(period / 60)))} * * * *"


def maintenance_schedule(settings: Settings) -> tuple[tuple[str, Any, str], ...]:
    """(task name, function, cron) of each periodic task, from the settings' thresholds."""
    return (
        (TASK_RECOVER_STALLED, tasks.recover_stalled, every(settings.stalled_after_s / 4)),
        (
            TASK_PROMOTE_STARVED,
            tasks.promote_starved,
            every(min(5.0, settings.starvation_after_s / 4)),
        ),
        (TASK_PRUNE, tasks.prune, "17 * * * *"),
    )


def build_app(settings: Settings) -> procrastinate.App:
    """The App with every task of the engine under its stable name."""
    app = queue.make_app(settings.require_database_url(), settings.db_schema)
    app.task(
        name=constants.TASK_RUN_ANALYSIS,
        queue=constants.QUEUE_ANALYSES,
        pass_context=True,
        retry=retry.EngineRetryStrategy(),
    )(tasks.run_analysis)
    app.task(
        name=constants.TASK_DELIVER_CALLBACK, queue=constants.QUEUE_CALLBACKS, pass_context=True
    )(tasks.deliver_callback)
    for name, func, cron in maintenance_schedule(settings):
        task = app.task(name=name, queue=constants.QUEUE_MAINTENANCE, pass_context=True)(func)
        app.periodic(cron=cron)(task)
    return app


def callback_hook(app: procrastinate.App) -> progress.OnTerminal:
    """Queue the job's callback (when it has a callback_url) in the transaction that ends it."""

    async def on_terminal(
        conn: psycopg.AsyncConnection[Any], row: dict[str, Any], kind: str
    ) -> None:
        await enqueue.on_terminal(app, conn, row["id"], kind, row["callback_url"])

    return on_terminal


def pool_size(options: WorkerOptions) -> int:
    """A connection per job slot plus fetch/finish, heartbeats, abort polls, maintenance."""
    return options.concurrency + 6


def make_pool(settings: Settings, size: int) -> psycopg_pool.AsyncConnectionPool[Any]:
    """Autocommit connections with dict rows: procrastinate's calls are single statements
    (one round trip each); the pipeline opens explicit transactions where it needs them."""
    return psycopg_pool.AsyncConnectionPool(
        settings.require_database_url(),
        kwargs={
            **connect_kwargs(settings.db_schema, application_name="bi-engine-worker"),
            "row_factory": dict_row,
        },
        configure=_autocommit,
        min_size=size,
        max_size=size,
        open=False,
        name="bi-worker",
    )


async def _autocommit(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.set_autocommit(True)


def prepare_environment(environ: MutableMapping[str, str] | None = None) -> None:
    """crewai needs a writable HOME/XDG_DATA_HOME and must not phone home (telemetry)."""
    env = os.environ if environ is None else environ
    for key, value in CREWAI_ENVIRONMENT.items():
        env.setdefault(key, value)
    home = env.get("HOME", "")
    if not home or not os.access(home, os.W_OK):
        fallback = Path(tempfile.gettempdir()) / f"bi-engine-home-{os.getuid()}"
        fallback.mkdir(parents=True, exist_ok=True)
        env["HOME"] = home = str(fallback)
    data_home = Path(env.setdefault("XDG_DATA_HOME", str(Path(home) / ".local" / "share")))
    data_home.mkdir(parents=True, exist_ok=True)


def quiet_procrastinate() -> None:
    """Drop procrastinate's per-job outcome lines (the pipeline logs each state change)."""
    target = logging.getLogger("procrastinate.worker")
    if not any(isinstance(f, _JobOutcomeFilter) for f in target.filters):
        target.addFilter(_JobOutcomeFilter())


class _JobOutcomeFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "action", None) not in _QUIET_ACTIONS


async def run_worker(
    settings: Settings,
    options: WorkerOptions,
    *,
    registry: runners.RunnerRegistry | None = None,
    on_terminal: progress.OnTerminal | None = None,
) -> None:
    """Run until SIGTERM/SIGINT, then stop gracefully (see the module docstring).

    ``on_terminal`` defaults to queueing the job's callback (:func:`callback_hook`).
    """
    prepare_environment()
    quiet_procrastinate()
    metrics = worker_metrics.WorkerMetrics()
    async with make_pool(settings, pool_size(options)) as pool:
        app = build_app(settings)
        async with app.open_async(pool=pool):
            engine = make_engine(
                app,
                settings,
                pool,
                options,
                registry=registry,
                on_terminal=on_terminal,
                observer=metrics,
            )
            lanes = make_lanes(app, settings, options, engine)
            log.info(
                "worker_started",
                name=options.name,
                concurrency=options.concurrency,
                queues=list(options.queues),
                types=list(engine.deps.registry),
            )
            async with worker_metrics.running(
                metrics, settings, pool, engine.deps.registry, name=options.name
            ):
                await _run_until_stopped(lanes, lambda: make_lanes(app, settings, options, engine))
    log.info("worker_stopped", name=options.name)


def make_engine(
    app: procrastinate.App,
    settings: Settings,
    pool: psycopg_pool.AsyncConnectionPool[Any],
    options: WorkerOptions,
    *,
    registry: runners.RunnerRegistry | None = None,
    on_terminal: progress.OnTerminal | None = None,
    observer: pipeline.Observer | None = None,
) -> tasks.Engine:
    """What the tasks share in this process (handed to them by procrastinate)."""
    deps = pipeline.Deps(
        settings=settings,
        pool=pool,
        registry=registry or runners.default_registry(),
        on_terminal=on_terminal or callback_hook(app),
        progress_interval_s=options.progress_interval_s,
        watch_interval_s=options.watch_interval_s,
        observer=observer,
    )
    return tasks.Engine(app=app, deps=deps, fair_share=options.fair_share)


def make_lanes(
    app: procrastinate.App,
    settings: Settings,
    options: WorkerOptions,
    engine: tasks.Engine,
    *,
    wait: bool = True,
) -> list[procrastinate_worker.Worker]:
    """The job lane and (unless disabled) the maintenance lane; ``wait=False`` drains and
    returns (benchmarks)."""
    common: dict[str, Any] = {
        "wait": wait,
        "additional_context": {tasks.CONTEXT_KEY: engine},
        "install_signal_handlers": False,
        "shutdown_graceful_timeout": options.shutdown_grace_s,
        "update_heartbeat_interval": max(0.2, settings.stalled_after_s / 4),
        "stalled_worker_timeout": settings.stalled_after_s,
        "fetch_job_polling_interval": FETCH_POLL_S,
        "abort_job_polling_interval": 1.0,
    }
    lanes = [
        procrastinate_worker.Worker(
            app,
            queues=list(options.queues),
            name=options.name,
            concurrency=options.concurrency,
            **common,
        )
    ]
    if options.maintenance_lane:
        lanes.append(
            procrastinate_worker.Worker(
                app,
                queues=[constants.QUEUE_MAINTENANCE],
                name=f"{options.name}-maintenance",
                concurrency=1,
                **common,
            )
        )
    return lanes


async def _run_lanes(lanes: Sequence[procrastinate_worker.Worker]) -> None:
    """Run every lane; when one ends (stop or failure) stop the others too."""
    running = [asyncio.ensure_future(lane.run()) for lane in lanes]  # type: ignore[no-untyped-call]
    try:
        await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
    finally:
        _stop(lanes)
        await asyncio.gather(*running, return_exceptions=True)
    for task in running:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _run_until_stopped(
    lanes: list[procrastinate_worker.Worker],
    new_lanes: Callable[[], list[procrastinate_worker.Worker]],
) -> None:
    """Run the lanes until SIGTERM/SIGINT, starting fresh ones whenever they end on their own.

    procrastinate stops a worker whose LISTEN connection fails, and cannot start one while
    the database is down: without this loop a database restart would end the process. Its
    jobs were handed back (or are recovered as stalled); new lanes take them again.
    """
    stopping = asyncio.Event()
    delay = LANE_RESTART_MIN_S

    def stop() -> None:
        stopping.set()
        _stop(lanes)

    with _stop_on_signals(stop):
        while True:
            started = time.monotonic()
            try:
                await _run_lanes(lanes)
            except Exception as exc:
                if stopping.is_set():
                    raise
                log.warning("worker_lanes_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            if stopping.is_set():
                return
            if time.monotonic() - started > 2 * LANE_RESTART_MAX_S:
                delay = LANE_RESTART_MIN_S  # they had been running: a fresh outage
            log.warning("worker_lanes_restarting", in_s=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            if stopping.is_set():
                return
            delay = min(LANE_RESTART_MAX_S, delay * 2)
            lanes[:] = new_lanes()


def _stop(lanes: Sequence[procrastinate_worker.Worker]) -> None:
    for lane in lanes:
        lane.stop()  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """First SIGTERM/SIGINT: graceful stop. A second one: the default (immediate) action."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)

    def on_signal(signum: int) -> None:
        log.info("worker_stopping", signal=signal.Signals(signum).name)
        for sig in signals:
            loop.remove_signal_handler(sig)
        stop()

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
