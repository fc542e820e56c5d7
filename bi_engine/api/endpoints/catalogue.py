"""``GET /types``: the analysis types and the AI Teams, in business words (CONTRACT 5 and 9)."""

from __future__ import annotations

from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bi_engine.api import context
from bi_engine.api.responses import JSONResponse
from bi_engine.domain import vocabulary


@cache
def types_document() -> dict[str, Any]:
    return {
        "types": [
            {"type": t.type, "label": t.label, "description": t.description, "team": t.team}
            for t in vocabulary.ANALYSIS_TYPES
        ],
        "teams": [
            {
                "id": team.id,
                "label": team.label,
                "agents": [{"role": a.role, "display": a.display} for a in team.agents],
            }
            for team in vocabulary.TEAMS
        ],
    }


async def list_types(request: Request) -> Response:
    context.principal(request)
    return JSONResponse(types_document())
