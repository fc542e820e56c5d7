"""``GET /stats``: how the caller's analyses are doing (an admin's: everyone's).

Units: counts are analyses; times are seconds; rates and shares are fractions 0..1.
``completed_today`` counts since 00:00 UTC; the averages, the success rate and the agent
utilisation cover the last :data:`WINDOW_DAYS` days (analyses finished, Processing Tasks
started within it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from bi_engine.api import context
from bi_engine.api.responses import JSONResponse
from bi_engine.api.state import engine
from bi_engine.db import stats as stats_rows
from bi_engine.domain import vocabulary

WINDOW_DAYS: Final = 30
UNITS: Final = {
    "active_analyses": "analyses queued or running now",
    "completed_today": "analyses completed since 00:00 UTC",
    "average_completion_time": "seconds from submission to completion (window)",
    "average_run_time": "seconds from start to completion (window)",
    "success_rate": "completed / (completed + failed), 0..1 (window)",
    "agent_utilization.busy_seconds": "seconds of finished Processing Tasks (window)",
    "agent_utilization.share": "the assistant's part of all busy seconds, 0..1 (window)",
}


@cache
def _displays() -> dict[str, str]:
    return {agent.role: agent.display for team in vocabulary.TEAMS for agent in team.agents}


def _rounded(value: Any, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _agents(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    busy_total = sum(float(row["busy_seconds"]) for row in rows)
    return [
        {
            "agent": row["agent"],
            "display": _displays().get(row["agent"], row["agent"]),
            "tasks": row["tasks"],
            "completed": row["completed"],
            "failed": row["failed"],
            "running": row["running"],
            "analyses": row["analyses"],
            "busy_seconds": round(float(row["busy_seconds"]), 3),
            "share": round(float(row["busy_seconds"]) / busy_total, 4) if busy_total else 0.0,
        }
        for row in rows
    ]


def stats_document(row: dict[str, Any], *, everyone: bool) -> dict[str, Any]:
    decided = row["completed"] + row["failed"]
    return {
        "success": True,
        "scope": "all" if everyone else "own",
        "window_days": WINDOW_DAYS,
        "generated_at": datetime.now(UTC),
        "active_analyses": row["queued"] + row["running"],
        "queued": row["queued"],
        "running": row["running"],
        "completed_today": row["completed_today"],
        "average_completion_time": _rounded(row["avg_total_s"], 3),
        "average_run_time": _rounded(row["avg_run_s"], 3),
        "success_rate": round(row["completed"] / decided, 4) if decided else None,
        "completed": row["completed"],
        "failed": row["failed"],
        "cancelled": row["cancelled"],
        "agent_utilization": _agents(list(row["agents"])),
        "units": UNITS,
    }


async def stats(request: Request) -> Response:
    """Counts, averages and the AI Assistants' utilisation (see the module docstring)."""
    who = context.principal(request)
    async with engine(request).pool.connection() as conn:
        row = await stats_rows.overview(
            conn, user_id=context.owner_filter(who), window_days=WINDOW_DAYS
        )
    return JSONResponse(stats_document(row, everyone=who.is_admin))
