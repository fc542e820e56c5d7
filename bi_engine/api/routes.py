"""The whole route table. Base path /api/business-intelligence, except the root endpoints.

Each authenticated endpoint sits in its :func:`~bi_engine.api.guard.guarded` frame with its
policy: the audit log's action and the rate limit of CONTRACT section 11 (analyze 10,
status reads 60, template writes 5 per minute and user).
"""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute, Route, WebSocketRoute, websocket_session

from bi_engine.api.endpoints import (
    analyze,
    catalogue,
    dashboard,
    events,
    jobs,
    operations,
    stats,
    templates,
    websocket,
)
from bi_engine.api.guard import AuditedStream, Policy, guarded
from bi_engine.constants import API_PREFIX as P
from bi_engine.errors import BIError
from bi_engine.ratelimit import ANALYZE, STATUS_READS, TEMPLATE_WRITES

# submissions, cancels and retries audit their success with their own change
SUBMIT = Policy("analysis_requested", ANALYZE, audited=False, body_first=True)
STATUS = Policy("analysis_status_read", STATUS_READS)
RESULT = Policy("analysis_result_read", STATUS_READS)
REPORT = Policy("analysis_report_read", STATUS_READS)
LIST = Policy("analyses_listed", STATUS_READS)
CANCEL = Policy("analysis_cancelled", audited=False)
RETRY = Policy("analysis_retried", audited=False)
TYPES = Policy("types_listed", audited=False)  # the static catalogue: refusals only
STATS = Policy("stats_read")
TEMPLATES_LIST = Policy("templates_listed")
TEMPLATE_READ = Policy("template_read")
TEMPLATE_CREATE = Policy("template_created", TEMPLATE_WRITES, body_first=True)
TEMPLATE_UPDATE = Policy("template_updated", TEMPLATE_WRITES, body_first=True)
TEMPLATE_DELETE = Policy("template_deleted", TEMPLATE_WRITES)


def stream_user(connection: HTTPConnection) -> str | None:
    """Who opens a stream (JWT or stream token); None when the credentials are not valid."""
    try:
        return events.grant_of(connection).principal.user_id
    except BIError:
        return None


def routes() -> list[BaseRoute]:
    template = f"{P}/templates/{{template_id}}"
    return [
        Route("/health", operations.health, methods=["GET"]),
        Route("/metrics", operations.metrics, methods=["GET"]),
        Route("/openapi.json", operations.openapi_json, methods=["GET"]),
        Route(f"{P}/analyze", guarded(analyze.analyze, SUBMIT), methods=["POST"]),
        Route("/api/analyze", guarded(analyze.analyze, SUBMIT), methods=["POST"]),
        Route(f"{P}/jobs", guarded(jobs.list_jobs, LIST), methods=["GET"]),
        Route(f"{P}/jobs/{{job_id}}", guarded(jobs.get_job, STATUS), methods=["GET"]),
        Route(f"{P}/status/{{job_id}}", guarded(jobs.get_job, STATUS), methods=["GET"]),
        Route(f"{P}/jobs/{{job_id}}/result", guarded(jobs.get_result, RESULT), methods=["GET"]),
        Route(f"{P}/results/{{job_id}}", guarded(jobs.get_result, RESULT), methods=["GET"]),
        Route(f"{P}/jobs/{{job_id}}/report", guarded(jobs.get_report, REPORT), methods=["GET"]),
        Route(f"{P}/jobs/{{job_id}}/cancel", guarded(jobs.cancel, CANCEL), methods=["POST"]),
        Route(f"{P}/jobs/{{job_id}}/retry", guarded(jobs.retry, RETRY), methods=["POST"]),
        Route(f"{P}/types", guarded(catalogue.list_types, TYPES), methods=["GET"]),
        Route(f"{P}/stats", guarded(stats.stats, STATS), methods=["GET"]),
        Route(
            f"{P}/templates",
            guarded(templates.list_templates, TEMPLATES_LIST),
            methods=["GET"],
        ),
        Route(
            f"{P}/templates",
            guarded(templates.create_template, TEMPLATE_CREATE),
            methods=["POST"],
        ),
        Route(template, guarded(templates.get_template, TEMPLATE_READ), methods=["GET"]),
        Route(template, guarded(templates.update_template, TEMPLATE_UPDATE), methods=["PUT"]),
        Route(template, guarded(templates.delete_template, TEMPLATE_DELETE), methods=["DELETE"]),
        Route(
            f"{P}/jobs/{{job_id}}/events",
            AuditedStream(events.job_events, "stream_opened", stream_user, stream="job"),
            methods=["GET"],
        ),
        Route(
            f"{P}/events",
            AuditedStream(events.all_events, "stream_opened", stream_user, stream="feed"),
            methods=["GET"],
        ),
        WebSocketRoute(
            f"{P}/ws/jobs/{{job_id}}",
            AuditedStream(
                websocket_session(websocket.job_socket),
                "stream_opened",
                stream_user,
                stream="websocket",
            ),
        ),
        *dashboard.routes(),
    ]
