"""The API process's Prometheus registry (CONTRACT section 11: the names are fixed)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass
class ApiMetrics:
    """One registry per app, so tests and several apps in a process never collide."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

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

    def render(self) -> bytes:
        """The Prometheus text exposition format."""
        return generate_latest(self.registry)
