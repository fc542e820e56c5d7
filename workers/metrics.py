"""The worker process's metrics: its Prometheus exporter and what it reports to the database.

:class:`WorkerMetrics` is the pipeline's observer (job outcomes, durations and waits, the
LLM calls of each attempt) and counts callback deliveries; its registry is served on
``BI_WORKER_METRICS_PORT`` by prometheus_client's HTTP server (a thread). While the worker
runs, :func:`running` also samples every few seconds:

- the circuit breakers of the worker's LLM runners -> ``bi_llm_circuit_open{provider}``,
  and one row per provider in ``llm_circuits`` (what ``GET /health`` shows);
- the live procrastinate workers -> ``bi_workers_alive``.

Counters count this process's events only, so sums over every worker are exact; the queue
gauges are the API's (one scrape target computes them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Final

import psycopg_pool
from prometheus_client import Gauge, start_http_server

from bi_engine.db import circuits, health
from bi_engine.logging import get_logger
from bi_engine.metrics import WorkMetrics, new_registry
from bi_engine.settings import Settings
from workers.runners import RunnerRegistry

MAX_SAMPLE_INTERVAL_S: Final = 5.0
PATTERN: Final = "pattern"
CIRCUIT_STATES: Final = frozenset({"closed", "open", "half_open"})

log = get_logger("bi.worker")


class WorkerMetrics:
    """One per worker process: a registry, and the observer the pipeline reports to."""

    def __init__(self) -> None:
        self.registry = new_registry()
        self.work = WorkMetrics(self.registry)
        self.circuit_open = Gauge(
            "bi_llm_circuit_open",
            "1 while this worker's circuit breaker skips the provider",
            ("provider",),
            registry=self.registry,
        )
        self.workers_alive = Gauge(
            "bi_workers_alive",
            "procrastinate workers with a recent heartbeat (each worker process runs a job"
            " lane and a maintenance lane)",
            registry=self.registry,
        )

    # ------------------------------------------------------------ the pipeline's observer

    def attempt_started(self, job_type: str, wait_s: float | None) -> None:
        """``wait_s``: seconds since queueing, for a first start (None for later attempts)."""
        if wait_s is not None:
            self.work.job_wait.observe(max(0.0, wait_s))

    def attempt_ended(self, job_type: str, kind: str, code: str | None, run_s: float) -> None:
        """Completed and failed attempts end the job; retries and cancels are not outcomes."""
        if kind == "completed":
            self.work.jobs_completed.labels(job_type).inc()
        elif kind == "failed":
            self.work.jobs_failed.labels(job_type, code or "internal_error").inc()
        else:
            return
        self.work.job_duration.labels(job_type).observe(max(0.0, run_s))

    def llm_calls_hook(self) -> Callable[[Sequence[Any]], None]:
        """For one attempt: the runner hands over its whole call record each time; count
        only the calls it did not hand over before."""
        counted = 0

        def count(records: Sequence[Any]) -> None:
            nonlocal counted
            fresh = records[counted:] if len(records) >= counted else records
            counted = len(records)
            for record in fresh:
                self.llm_call(record)

        return count

    def llm_call(self, record: Any) -> None:
        provider = str(getattr(record, "provider", "unknown"))
        self.work.llm_requests.labels(provider, str(getattr(record, "outcome", "error"))).inc()
        for direction in ("prompt", "completion"):
            tokens = int(getattr(record, f"{direction}_tokens", 0) or 0)
            if tokens > 0:
                self.work.llm_tokens.labels(provider, direction).inc(tokens)
        cost = float(getattr(record, "cost_eur", 0.0) or 0.0)
        if cost > 0:
            self.work.llm_cost.labels(provider).inc(cost)

    def callback_attempted(self, outcome: str) -> None:
        self.work.webhook_deliveries.labels(outcome).inc()

    # ------------------------------------------------------------ sampled gauges

    def set_circuits(self, states: Mapping[str, str]) -> None:
        for provider, state in states.items():
            self.circuit_open.labels(provider).set(1 if state == "open" else 0)


def breaker_states(runners: RunnerRegistry, chain: Sequence[str]) -> dict[str, str]:
    """The state of every provider of ``chain`` (but ``pattern``) on this worker.

    Runners that keep circuit breakers expose them as ``runner.breakers.states()`` (the AI
    Team runner does); a provider no breaker has seen yet is closed.
    """
    seen: dict[str, str] = {}
    boards: set[int] = set()
    for analysis_type in list(runners):
        board = getattr(runners.get(analysis_type), "breakers", None)
        states = getattr(board, "states", None)
        if board is None or id(board) in boards or not callable(states):
            continue
        boards.add(id(board))
        seen.update({str(k): str(v) for k, v in states().items() if v in CIRCUIT_STATES})
    merged = {provider: "closed" for provider in chain if provider != PATTERN}
    merged.update(seen)
    return merged


def worker_name(name: str) -> str:
    """This process's name in ``llm_circuits``: host, pid and the worker's name."""
    return f"{socket.gethostname()}:{os.getpid()}:{name}"[:300]


async def sample(
    metrics: WorkerMetrics,
    settings: Settings,
    pool: psycopg_pool.AsyncConnectionPool[Any],
    runners: RunnerRegistry,
    worker: str,
) -> None:
    """One sample: circuit gauges, the circuit report row per provider, live workers."""
    states = breaker_states(runners, settings.effective_llm_chain)
    metrics.set_circuits(states)
    async with pool.connection() as conn, conn.pipeline():
        await circuits.report(conn, worker, states)
        alive = await health.live_workers(conn, settings.stalled_after_s)
    metrics.workers_alive.set(alive)


def sample_interval_s(settings: Settings) -> float:
    """Often enough that ``/health`` trusts reports younger than ``BI_STALLED_AFTER_S``."""
    return max(0.2, min(MAX_SAMPLE_INTERVAL_S, settings.stalled_after_s / 4))


async def _sample_forever(
    metrics: WorkerMetrics,
    settings: Settings,
    pool: psycopg_pool.AsyncConnectionPool[Any],
    runners: RunnerRegistry,
    worker: str,
) -> None:
    while True:
        try:
            await sample(metrics, settings, pool, runners, worker)
        except Exception as exc:  # a database blip: the next sample tries again
            log.warning("worker_metrics_sample_failed", error=type(exc).__name__)
        await asyncio.sleep(sample_interval_s(settings))


def serve(metrics: WorkerMetrics, port: int, host: str = "0.0.0.0") -> Any:
    """Serve the registry over HTTP in a thread; returns the server (``server_port``)."""
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    log.info("worker_metrics_serving", port=server.server_port)
    return server


@contextlib.asynccontextmanager
async def running(
    metrics: WorkerMetrics,
    settings: Settings,
    pool: psycopg_pool.AsyncConnectionPool[Any],
    runners: RunnerRegistry,
    *,
    name: str,
) -> AsyncIterator[int | None]:
    """The exporter (when BI_WORKER_METRICS_PORT is set) and the sampler, for the worker's
    lifetime; yields the exporter's port. On exit the worker's circuit report is removed."""
    server = None
    if settings.worker_metrics_port is not None:
        server = serve(metrics, settings.worker_metrics_port)
    worker = worker_name(name)
    sampler = asyncio.create_task(_sample_forever(metrics, settings, pool, runners, worker))
    try:
        yield server.server_port if server is not None else None
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await _forget(pool, worker)
        if server is not None:
            server.shutdown()
            server.server_close()


async def _forget(pool: psycopg_pool.AsyncConnectionPool[Any], worker: str) -> None:
    try:
        async with pool.connection() as conn:
            await circuits.forget(conn, worker)
    except Exception as exc:  # its rows fade out anyway (reports older than the threshold)
        log.warning("worker_metrics_forget_failed", error=type(exc).__name__)
