"""The whole route table. Base path /api/business-intelligence, except the root endpoints."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route, WebSocketRoute

from bi_engine.api.endpoints import (
    analyze,
    catalogue,
    dashboard,
    events,
    jobs,
    operations,
    websocket,
)
from bi_engine.constants import API_PREFIX as P


def routes() -> list[BaseRoute]:
    return [
        Route("/health", operations.health, methods=["GET"]),
        Route("/metrics", operations.metrics, methods=["GET"]),
        Route("/openapi.json", operations.openapi_json, methods=["GET"]),
        Route(f"{P}/analyze", analyze.analyze, methods=["POST"]),
        Route("/api/analyze", analyze.analyze, methods=["POST"]),
        Route(f"{P}/jobs", jobs.list_jobs, methods=["GET"]),
        Route(f"{P}/jobs/{{job_id}}", jobs.get_job, methods=["GET"]),
        Route(f"{P}/status/{{job_id}}", jobs.get_job, methods=["GET"]),
        Route(f"{P}/jobs/{{job_id}}/result", jobs.get_result, methods=["GET"]),
        Route(f"{P}/results/{{job_id}}", jobs.get_result, methods=["GET"]),
        Route(f"{P}/jobs/{{job_id}}/report", jobs.get_report, methods=["GET"]),
        Route(f"{P}/jobs/{{job_id}}/cancel", jobs.cancel, methods=["POST"]),
        Route(f"{P}/jobs/{{job_id}}/retry", jobs.retry, methods=["POST"]),
        Route(f"{P}/types", catalogue.list_types, methods=["GET"]),
        Route(f"{P}/jobs/{{job_id}}/events", events.job_events, methods=["GET"]),
        Route(f"{P}/events", events.all_events, methods=["GET"]),
        WebSocketRoute(f"{P}/ws/jobs/{{job_id}}", websocket.job_socket),
        *dashboard.routes(),
    ]
