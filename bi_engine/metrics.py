"""Prometheus metrics (CONTRACT section 11: the names are fixed, dashboards use them).

Two registries, one vocabulary:

- the API process (:class:`ApiMetrics`) counts HTTP requests and submissions, and computes
  the database-derived gauges ``bi_queue_size{priority}`` and ``bi_workers_alive`` at scrape
  time (:class:`DatabaseGauges`, filled by one query per scrape);
- the worker process (``workers.metrics``) counts what only it sees: job outcomes and
  durations, LLM requests, tokens and cost, callback deliveries, circuit breakers.

:class:`WorkMetrics` defines the worker-side families once; the API declares them too (with
no samples), so one scrape of the API shows every name of section 11 and dashboards that
sum over API and workers count each event exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST

DURATION_BUCKETS: Final = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0)
"""Seconds an attempt ran: smoke tests take a second, AI Team analyses minutes."""
WAIT_BUCKETS: Final = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
"""Seconds from queueing to the first attempt's start."""


def new_registry() -> CollectorRegistry:
    """One registry per app or worker, so tests and several apps in a process never collide."""
    return CollectorRegistry(auto_describe=True)


@dataclass
class WorkMetrics:
    """The families the workers fill: jobs, LLM calls, callback deliveries."""

    registry: CollectorRegistry

    def __post_init__(self) -> None:
        r = self.registry
        self.jobs_completed = Counter(
            "bi_jobs_completed", "Analyses completed, by type", ("type",), registry=r
        )
        self.jobs_failed = Counter(
            "bi_jobs_failed",
            "Analyses that ended failed, by type and error code",
            ("type", "reason"),
            registry=r,
        )
        self.job_duration = Histogram(
            "bi_job_duration_seconds",
            "Run time of the attempt that ended an analysis (completed or failed), by type",
            ("type",),
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.job_wait = Histogram(
            "bi_job_wait_seconds",
            "Time from queueing to the start of an analysis's first attempt",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.llm_requests = Counter(
            "bi_llm_requests",
            "LLM provider requests by outcome (skipped: not sent, e.g. circuit open)",
            ("provider", "outcome"),
            registry=r,
        )
        self.llm_tokens = Counter(
            "bi_llm_tokens",
            "LLM tokens by provider and direction (prompt, completion)",
            ("provider", "direction"),
            registry=r,
        )
        self.llm_cost = Counter(
            "bi_llm_cost_eur", "LLM cost in EUR by provider", ("provider",), registry=r
        )
        self.webhook_deliveries = Counter(
            "bi_webhook_deliveries",
            "Callback delivery attempts by outcome (delivered, failed, dead_letter, skipped)",
            ("outcome",),
            registry=r,
        )


class DatabaseGauges(Collector):
    """``bi_queue_size{priority}`` and ``bi_workers_alive`` from the last scrape's query.

    The scrape handler runs the query, hands the figures over with :meth:`update`, then
    renders. When the database cannot be read the families are exposed without samples
    (never stale figures).
    """

    def __init__(self) -> None:
        self._queued: dict[str, int] | None = None
        self._workers: int | None = None

    def update(self, queued: Mapping[str, int] | None, workers: int | None) -> None:
        self._queued = dict(queued) if queued is not None else None
        self._workers = workers

    def describe(self) -> Iterable[Metric]:
        return self._families(None, None)

    def collect(self) -> Iterable[Metric]:
        return self._families(self._queued, self._workers)

    @staticmethod
    def _families(queued: dict[str, int] | None, workers: int | None) -> list[Metric]:
        queue = GaugeMetricFamily(
            "bi_queue_size", "Queued analyses by priority", labels=("priority",)
        )
        for priority, count in (queued or {}).items():
            queue.add_metric((priority,), count)
        alive = GaugeMetricFamily(
            "bi_workers_alive",
            "procrastinate workers with a recent heartbeat (each worker process runs a job"
            " lane and a maintenance lane)",
        )
        if workers is not None:
            alive.add_metric((), workers)
        return [queue, alive]


@dataclass
class ApiMetrics:
    """The API process's registry."""

    registry: CollectorRegistry = field(default_factory=new_registry)

    def __post_init__(self) -> None:
        self.http_requests = Counter(
            "bi_http_requests",
            "HTTP requests by method, route template and status code",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.jobs_submitted = Counter(
            "bi_jobs_submitted",
            "Analyses accepted, by type and priority",
            ("type", "priority"),
            registry=self.registry,
        )

        self.submit_batches = Counter(
            "bi_submit_batches",
            "Transactions that wrote submissions (group commit)",
            registry=self.registry,
        )
        self.submit_batched_jobs = Counter(
            "bi_submit_batched_jobs",
            "Submissions written by those transactions",
            registry=self.registry,
        )
        self.work = WorkMetrics(self.registry)
        self.database = DatabaseGauges()
        self.registry.register(self.database)

    def render(self) -> bytes:
        """The Prometheus text exposition format."""
        return generate_latest(self.registry)
