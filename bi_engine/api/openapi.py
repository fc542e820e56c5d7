"""The OpenAPI 3.1 description, generated from the same pydantic models the API uses.

``components.schemas`` comes from ``Model.model_json_schema``; the paths are declared here
next to each other so the whole HTTP surface reads in one place. Other parts of the API
(live streams, templates...) add their paths with :func:`document`'s ``extra_paths``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from bi_engine import __version__, constants
from bi_engine.domain import jobs, submission, templates

REF: Final = "#/components/schemas/{model}"
P: Final = constants.API_PREFIX


# ------------------------------------------------------------------------ response-only models


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. job_not_found")
    message: str
    details: Any = Field(None, description="For 422: a list of {loc, msg, type}, one per problem")


class ErrorEnvelope(BaseModel):
    """Every error, everywhere."""

    model_config = ConfigDict(extra="forbid")

    success: Literal[False] = False
    error: ErrorBody


class TypeEntry(BaseModel):
    type: str
    label: str
    description: str
    team: str


class TeamAgent(BaseModel):
    role: str
    display: str


class TeamEntry(BaseModel):
    id: str
    label: str
    agents: list[TeamAgent]


class TypesDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    types: list[TypeEntry]
    teams: list[TeamEntry]


class HealthDocument(BaseModel):
    """``checks``: database (status, latency_ms), queue (queued per priority, running,
    oldest_queued_s), workers (alive), llm (chain, per provider: circuit state as the live
    workers report it, recent call outcomes)."""

    status: Literal["healthy", "unhealthy"]
    version: str
    checks: dict[str, dict[str, Any]]


class AgentUtilization(BaseModel):
    agent: str = Field(description="The AI Assistant's role")
    display: str
    tasks: int
    completed: int
    failed: int
    running: int
    analyses: int
    busy_seconds: float = Field(description="Seconds of finished Processing Tasks")
    share: float = Field(description="Part of all assistants' busy seconds, 0..1")


class StatsDocument(BaseModel):
    """Counts are analyses, times seconds, rates fractions 0..1; ``completed_today`` since
    00:00 UTC, the rest over the last ``window_days`` days."""

    model_config = ConfigDict(extra="forbid")

    success: Literal[True] = True
    scope: Literal["own", "all"] = Field(description="all: an admin's view of every user")
    window_days: int
    generated_at: str
    active_analyses: int = Field(description="Queued or running now")
    queued: int
    running: int
    completed_today: int
    average_completion_time: float | None = Field(description="Seconds, submission to end")
    average_run_time: float | None = Field(description="Seconds, start to end")
    success_rate: float | None = Field(description="completed / (completed + failed)")
    completed: int
    failed: int
    cancelled: int
    agent_utilization: list[AgentUtilization]
    units: dict[str, str]


_REQUEST_MODELS: Final[tuple[type[BaseModel], ...]] = (
    submission.AnalysisRequest,
    templates.TemplateFields,
    *dict.fromkeys(submission.DATA_MODELS.values()),
)
_RESPONSE_MODELS: Final[tuple[type[BaseModel], ...]] = (
    jobs.JobAccepted,
    jobs.JobStatus,
    jobs.JobList,
    jobs.JobResult,
    ErrorEnvelope,
    TypesDocument,
    HealthDocument,
    StatsDocument,
    templates.TemplateDocument,
    templates.TemplateList,
)


def _ref(model: type[BaseModel] | str) -> dict[str, str]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": REF.format(model=name)}


def _add(
    schemas: dict[str, Any], model: type[BaseModel], mode: Literal["validation", "serialization"]
) -> None:
    schema = model.model_json_schema(ref_template=REF, mode=mode)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema


def components() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in _REQUEST_MODELS:
        _add(schemas, model, "validation")
    for model in _RESPONSE_MODELS:
        _add(schemas, model, "serialization")
    data = schemas["AnalysisRequest"]["properties"]["data"]
    description = data.get("description", "")
    schemas["AnalysisRequest"]["properties"]["data"] = {
        "description": description,
        "anyOf": [
            *(_ref(m) for m in dict.fromkeys(submission.DATA_MODELS.values())),
            {"type": "string", "description": "JSON text holding one of the objects above"},
        ],
    }
    return {
        "schemas": schemas,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (HS256)"}
        },
    }


# ------------------------------------------------------------------------ paths


def _json(model: type[BaseModel] | str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _error(description: str) -> dict[str, Any]:
    return _json(ErrorEnvelope, description)


_COMMON_ERRORS: Final = {
    "401": _error("Missing, invalid or expired token"),
    "503": _error("Database unreachable"),
}
_JOB_ID: Final = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
    "description": "Someone else's job, or an id that is not a UUID, answers 404",
}


def _op(
    summary: str,
    tag: str,
    responses: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    secured: bool = True,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": dict(responses)}
    if secured:
        operation["security"] = [{"bearer": []}]
        operation["responses"].update(_COMMON_ERRORS)
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = body
    return operation


_RATE_HEADERS: Final = {
    name: {"description": text, "schema": {"type": "string"}}
    for name, text in (
        ("RateLimit-Limit", "Requests allowed per 60-second window"),
        ("RateLimit-Remaining", "Requests left in the window"),
        ("RateLimit-Reset", "Seconds until a request is allowed again (0: now)"),
        ("RateLimit-Policy", "limit;w=60"),
    )
}


def _limited(operation: dict[str, Any], per_minute: int) -> dict[str, Any]:
    """A rate-limited operation: 429 with Retry-After, RateLimit-* on every answer."""
    refused = _error(f"More than {per_minute} requests in 60 s by this user")
    retry = {"description": "Seconds to wait", "schema": {"type": "integer"}}
    refused["headers"] = {"Retry-After": retry, **_RATE_HEADERS}
    responses = operation["responses"]
    for status, response in list(responses.items()):
        if status.startswith("2"):  # a copy: response objects are shared between paths
            headers = {**response.get("headers", {}), **_RATE_HEADERS}
            responses[status] = {**response, "headers": headers}
    responses["429"] = refused
    operation["description"] = (
        f"Rate limit: {per_minute} requests per minute per user (refused ones do not count)."
    )
    return operation


def _located(response: dict[str, Any]) -> dict[str, Any]:
    """Every 202 carries ``Location: <status_url>``."""
    location = {"description": "The status URL", "schema": {"type": "string"}}
    return {**response, "headers": {"Location": location}}


def _submit_operation(summary: str) -> dict[str, Any]:
    accepted = _located(
        _json(jobs.JobAccepted, "Queued (or an idempotent replay of a running job)")
    )
    finished = {
        "description": "Prefer: wait saw the job end (result, or the final status), or an"
        " idempotent replay of a job that already ended",
        "content": {
            "application/json": {"schema": {"anyOf": [_ref(jobs.JobResult), _ref(jobs.JobStatus)]}}
        },
    }
    params = [
        {
            "name": "Prefer",
            "in": "header",
            "schema": {"type": "string", "example": "wait=30"},
            "description": "wait=N (N <= 60, larger values are capped): hold the answer until"
            " the job ends or N seconds pass. Unparseable preferences are ignored (RFC 7240).",
        },
        {
            "name": "Idempotency-Key",
            "in": "header",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            "description": "The same key from the same user within 24 h returns the original"
            " job (header Idempotent-Replayed: true) instead of creating a new one",
        },
    ]
    operation = _op(
        summary,
        "analyses",
        {
            "202": accepted,
            "200": finished,
            "400": _error("Empty body or malformed JSON"),
            "413": _error("Body larger than BI_MAX_BODY_BYTES"),
            "422": _error("Invalid fields, with the location of each problem"),
        },
        params=params,
        body={
            "required": True,
            "content": {"application/json": {"schema": _ref(submission.AnalysisRequest)}},
        },
    )
    return _limited(operation, 10)


def _job_read(summary: str, ok: dict[str, Any], *extra: tuple[str, str]) -> dict[str, Any]:
    responses = {"200": ok, "404": _error("No such job (or not yours)")}
    for status, description in extra:
        responses[status] = _error(description)
    return {"get": _limited(_op(summary, "jobs", responses, params=[_JOB_ID]), 60)}


def _list_params() -> list[dict[str, Any]]:
    def enum(name: str, values: tuple[str, ...]) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "schema": {"type": "string"},
            "description": f"Comma-separated or repeated; any of: {', '.join(values)}",
        }

    return [
        enum("status", constants.STATUSES),
        enum("type", constants.ANALYSIS_TYPES),
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
        },
        {
            "name": "cursor",
            "in": "query",
            "schema": {"type": "string"},
            "description": "next_cursor of the previous page",
        },
    ]


def _report() -> dict[str, Any]:
    ok = {
        "description": "Markdown, or HTML when Accept prefers text/html",
        "content": {
            "text/markdown": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
        },
    }
    return _job_read("The report", ok, ("409", "Not finished, or ended without a result"))


def _steer(summary: str, ok: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    responses = {**extra, "404": _error("No such job (or not yours)")}
    responses["409"] = _error("Wrong state for this action")
    responses.update(ok)
    return {"post": _op(summary, "jobs", responses, params=[_JOB_ID])}


def paths() -> dict[str, Any]:
    status = _json(jobs.JobStatus, "The status document")
    result = _json(jobs.JobResult, "The result")
    not_done = ("409", "Not finished (details.status), or ended without a result")
    return {
        f"{P}/analyze": {"post": _submit_operation("Submit an analysis")},
        "/api/analyze": {"post": _submit_operation("Submit an analysis (n8n alias)")},
        f"{P}/jobs": {
            "get": _limited(
                _op(
                    "The caller's jobs (admin: all), newest first",
                    "jobs",
                    {
                        "200": _json(jobs.JobList, "One page"),
                        "422": _error("Unknown filter value, bad limit or cursor"),
                    },
                    params=_list_params(),
                ),
                60,
            )
        },
        f"{P}/jobs/{{job_id}}": _job_read("The status document", status),
        f"{P}/status/{{job_id}}": _job_read("The status document (alias)", status),
        f"{P}/jobs/{{job_id}}/result": _job_read("The result", result, not_done),
        f"{P}/results/{{job_id}}": _job_read("The result (alias)", result, not_done),
        f"{P}/jobs/{{job_id}}/report": _report(),
        f"{P}/jobs/{{job_id}}/cancel": _steer(
            "Cancel: queued jobs at once, running jobs at their next step",
            {"200": status},
            {
                "202": _located(
                    _json(jobs.JobStatus, "Abort requested; the worker ends it cancelled")
                )
            },
        ),
        f"{P}/jobs/{{job_id}}/retry": _steer(
            "Queue a failed or cancelled job again",
            {"202": _located(_json(jobs.JobAccepted, "Queued again"))},
            {},
        ),
        f"{P}/types": {
            "get": _op(
                "Analysis types and AI Teams", "catalogue", {"200": _json(TypesDocument, "")}
            )
        },
        f"{P}/stats": {
            "get": _op(
                "Activity of the caller's analyses (admin: everyone's)",
                "operations",
                {"200": _json(StatsDocument, "Counts, averages, AI Assistants' utilisation")},
            )
        },
        **_template_paths(),
        **_operations_paths(),
    }


_TEMPLATE_ID: Final = {
    "name": "template_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
    "description": "Someone else's template answers 404 (admins see every template)",
}


def _template_paths() -> dict[str, Any]:
    one = _json(templates.TemplateDocument, "The template")
    body = {
        "required": True,
        "content": {"application/json": {"schema": _ref(templates.TemplateFields)}},
    }
    invalid = _error("Invalid fields, with the location of each problem")
    taken = _error("You already have a template with this name")
    missing = _error("No such template (or not yours)")
    created = {
        **_json(templates.TemplateDocument, "Created"),
        "headers": {"Location": {"description": "The template's URL", "schema": {}}},
    }
    write = {"400": _error("Empty body or malformed JSON"), "422": invalid, "409": taken}
    return {
        f"{P}/templates": {
            "get": _op(
                "The caller's saved templates (admin: all)",
                "templates",
                {"200": _json(templates.TemplateList, "By name")},
            ),
            "post": _limited(
                _op("Save a template", "templates", {"201": created, **write}, body=body), 5
            ),
        },
        f"{P}/templates/{{template_id}}": {
            "get": _op(
                "One template", "templates", {"200": one, "404": missing}, params=[_TEMPLATE_ID]
            ),
            "put": _limited(
                _op(
                    "Replace a template's fields",
                    "templates",
                    {"200": one, "404": missing, **write},
                    params=[_TEMPLATE_ID],
                    body=body,
                ),
                5,
            ),
            "delete": _limited(
                _op(
                    "Delete a template",
                    "templates",
                    {"204": {"description": "Deleted"}, "404": missing},
                    params=[_TEMPLATE_ID],
                ),
                5,
            ),
        },
    }


def _operations_paths() -> dict[str, Any]:
    health = {
        "200": _json(HealthDocument, "Healthy"),
        "503": _json(HealthDocument, "The database is unreachable"),
    }
    metrics = {
        "200": {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    }
    spec = {
        "200": {
            "description": "This document",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }
    return {
        "/health": {"get": _op("Health check", "operations", health, secured=False)},
        "/metrics": {"get": _op("Prometheus metrics", "operations", metrics, secured=False)},
        "/openapi.json": {"get": _op("This description", "operations", spec, secured=False)},
    }


@cache
def _base() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "BI Engine",
            "version": __version__,
            "description": "Submit business analyses, follow them live, read their reports."
            " Errors: {success: false, error: {code, message, details}}.",
        },
        "paths": paths(),
        "components": components(),
    }


def document(extra_paths: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The whole description; ``extra_paths`` (path -> path item) are merged in."""
    if not extra_paths:
        return _base()
    merged = copy.deepcopy(_base())
    for path, item in extra_paths.items():
        merged["paths"].setdefault(path, {}).update(item)
    return merged
