"""Jobs as users see them: the accepted (202), status and result documents, queue estimates.

Documents are built as plain dicts (fast to encode with orjson); the pydantic models below
describe the same shapes for the OpenAPI description and for tests.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from bi_engine import constants
from bi_engine.errors import BIError

Row = dict[str, Any]
Status = Literal["queued", "running", "completed", "failed", "cancelled"]
Priority = Literal["high", "normal", "low"]

DEFAULT_RUN_S: Final = 60.0
"""Assumed run time of a job while no job has completed recently."""
HIGHER_PRIORITIES: Final = {"high": (), "normal": ("high",), "low": ("high", "normal")}
PRIORITY_RANK: Final = {"high": 2, "normal": 1, "low": 0}


class JobNotFound(BIError):
    """No such job."""

    status_code = 404
    code = "job_not_found"


class JobStateConflict(BIError):
    """The job is not in a state that allows this."""

    status_code = 409
    code = "invalid_state"


class ResultNotReady(BIError):
    """The job has no result yet."""

    status_code = 409
    code = "job_not_finished"


class NoResult(BIError):
    """The job finished without a result."""

    status_code = 409
    code = "no_result"


def parse_job_id(raw: str | uuid.UUID) -> uuid.UUID:
    """A job id from a path or a command line; anything that is not a UUID is simply unknown."""
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError, AttributeError) as exc:
        raise JobNotFound from exc


# ------------------------------------------------------------------------ links


def status_url(job_id: uuid.UUID) -> str:
    return f"{constants.API_PREFIX}/jobs/{job_id}"


def links(job_id: uuid.UUID, stream_token: str | None = None) -> dict[str, str]:
    """URLs of one job; the stream URLs carry the job-scoped token when one is given."""
    base = status_url(job_id)
    query = f"?token={stream_token}" if stream_token else ""
    return {
        "status_url": base,
        "result_url": f"{base}/result",
        "events_url": f"{base}/events{query}",
        "websocket_url": f"{constants.API_PREFIX}/ws/jobs/{job_id}{query}",
    }


# ------------------------------------------------------------------------ queue estimates


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """Where a queued job stands, and what capacity the live workers offer."""

    position: int
    workers: int
    running: int
    avg_run_s: float | None


def batch_positions(
    queued_before: Mapping[str, int], members: Sequence[tuple[uuid.UUID, str]]
) -> list[int]:
    """Queue positions of jobs queued in one transaction (``(id, priority)`` each).

    Every job queued before the batch with the same or a higher priority is ahead; inside
    the batch the jobs share ``queued_at``, so among equal priorities the lower id goes
    first, as in the database's ordering.
    """
    positions = []
    for job_id, priority in members:
        rank = PRIORITY_RANK[priority]
        ahead = sum(n for p, n in queued_before.items() if PRIORITY_RANK[p] >= rank)
        ahead += sum(
            1
            for other_id, other in members
            if PRIORITY_RANK[other] > rank or (PRIORITY_RANK[other] == rank and other_id < job_id)
        )
        positions.append(ahead + 1)
    return positions


def estimate_start(
    snapshot: QueueSnapshot, concurrency: int, now: datetime | None = None
) -> datetime | None:
    """When a job at ``snapshot.position`` should start; None while no worker is alive.

    Capacity is live workers × ``BI_WORKER_CONCURRENCY``; jobs ahead start in waves of that
    size, each lasting the recent average run time.
    """
    if snapshot.workers <= 0:
        return None
    now = now or datetime.now(UTC)
    capacity = snapshot.workers * max(concurrency, 1)
    free = max(capacity - snapshot.running, 0)
    if snapshot.position <= free:
        return now
    waves = math.ceil((snapshot.position - free) / capacity)
    run_s = snapshot.avg_run_s if snapshot.avg_run_s and snapshot.avg_run_s > 0 else DEFAULT_RUN_S
    return now + timedelta(seconds=waves * run_s)


# ------------------------------------------------------------------------ documents


def utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def error_of(row: Row) -> dict[str, Any] | None:
    if row.get("status") != "failed" or not row.get("error_code"):
        return None
    return {"code": row["error_code"], "message": row.get("error_message") or ""}


def accepted_document(
    row: Row,
    *,
    stream_token: str,
    position: int | None,
    estimated_start: datetime | None,
) -> dict[str, Any]:
    """The 202 answer to a submission (also to its idempotent replay and to a retry)."""
    job_id: uuid.UUID = row["id"]
    return {
        "success": True,
        "job_id": job_id,
        "status": row["status"],
        "type": row["type"],
        "priority": row["priority"],
        "position_in_queue": position if row["status"] == "queued" else None,
        "estimated_start": utc(estimated_start) if row["status"] == "queued" else None,
        "created_at": utc(row["created_at"]),
        **links(job_id, stream_token),
    }


def status_document(
    row: Row, *, position: int | None = None, estimated_start: datetime | None = None
) -> dict[str, Any]:
    """CONTRACT section 5 status document (plus a few helpful extras)."""
    queued = row["status"] == "queued"
    job_id: uuid.UUID = row["id"]
    return {
        "success": True,
        "job_id": job_id,
        "type": row["type"],
        "status": row["status"],
        "priority": row["priority"],
        "sensitivity": row["sensitivity"],
        "agent_team": row["agent_team"],
        "progress": row["progress"],
        "current_step": row["current_step"],
        "attempts": row["attempts"],
        "position_in_queue": position if queued else None,
        "estimated_start": utc(estimated_start) if queued else None,
        "abort_requested": row["abort_requested_at"] is not None,
        "created_at": utc(row["created_at"]),
        "queued_at": utc(row["queued_at"]),
        "started_at": utc(row["started_at"]),
        "finished_at": utc(row["finished_at"]),
        "error": error_of(row),
        "status_url": status_url(job_id),
        "result_url": f"{status_url(job_id)}/result",
    }


def result_document(row: Row) -> dict[str, Any]:
    """The result (CONTRACT section 5): ``data`` is what the worker stored in ``result``."""
    require_result(row)
    return {
        "success": True,
        "job_id": row["id"],
        "status": row["status"],
        "type": row["type"],
        "finished_at": utc(row["finished_at"]),
        "data": row["result"],
    }


def require_result(row: Row) -> None:
    """409 with the status until the job completed with a result."""
    status = row["status"]
    if status in ("queued", "running"):
        raise ResultNotReady(
            f"The job is {status}; its result is available once it completes.",
            details={"status": status, "progress": row.get("progress", 0)},
        )
    if status != "completed" or row.get("result") is None:
        raise NoResult(
            f"The job ended {status} and has no result.",
            details={"status": status, "error": error_of(row)},
        )


# ------------------------------------------------------------------------ schemas (OpenAPI)


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobLinks(_Doc):
    status_url: str
    result_url: str
    events_url: str = Field(description="SSE stream of the job, with a job-scoped stream token")
    websocket_url: str = Field(description="The same events over a WebSocket")


class JobAccepted(JobLinks):
    """202 answer to a submission, an idempotent replay or a retry."""

    success: Literal[True] = True
    job_id: uuid.UUID
    status: Status
    type: str
    priority: Priority
    position_in_queue: int | None = Field(
        description="Queued jobs that start before this one (priority, then age) plus one"
    )
    estimated_start: datetime | None = Field(
        description="From recent run times and live worker capacity; null while no worker is alive"
    )
    created_at: datetime


class JobError(_Doc):
    code: str
    message: str


class JobStatus(_Doc):
    """The status document."""

    success: Literal[True] = True
    job_id: uuid.UUID
    type: str
    status: Status
    priority: Priority
    sensitivity: Literal["normal", "confidential"]
    agent_team: str | None
    progress: int = Field(ge=0, le=100)
    current_step: str | None
    attempts: int
    position_in_queue: int | None = Field(description="While queued; null otherwise")
    estimated_start: datetime | None
    abort_requested: bool
    created_at: datetime
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: JobError | None = Field(description="When failed")
    status_url: str
    result_url: str


class JobSummary(_Doc):
    """One entry of a job list (no queue position: ask the job itself)."""

    job_id: uuid.UUID
    type: str
    status: Status
    priority: Priority
    sensitivity: Literal["normal", "confidential"]
    progress: int
    current_step: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: JobError | None
    status_url: str


class JobList(_Doc):
    success: Literal[True] = True
    jobs: list[JobSummary]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end"
    )


class JobResult(_Doc):
    """The result document; ``data`` holds analysis, report_markdown, team and llm."""

    success: Literal[True] = True
    job_id: uuid.UUID
    status: Literal["completed"]
    type: str
    finished_at: datetime | None
    data: dict[str, Any]


def summary_document(row: Row) -> dict[str, Any]:
    job_id: uuid.UUID = row["id"]
    return {
        "job_id": job_id,
        "type": row["type"],
        "status": row["status"],
        "priority": row["priority"],
        "sensitivity": row["sensitivity"],
        "progress": row["progress"],
        "current_step": row["current_step"],
        "attempts": row["attempts"],
        "created_at": utc(row["created_at"]),
        "started_at": utc(row["started_at"]),
        "finished_at": utc(row["finished_at"]),
        "error": error_of(row),
        "status_url": status_url(job_id),
    }
