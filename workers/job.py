"""What the pipeline hands to an analysis runner, and what it gets back.

The pipeline (claiming, status, retries, deadlines) and the analysis runners (analytics,
AI teams, narration) meet here and nowhere else, so each side can change on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bi_engine.settings import Settings


class ProgressSink(Protocol):
    """Where a runner reports progress; the pipeline's ProgressReporter implements it."""

    async def progress(
        self, percent: int, step: str, message: str, agent: str | None = None
    ) -> None:
        """Record progress (0-100) in business words; may be batched before it is written."""
        ...


@dataclass(frozen=True, slots=True)
class JobContext:
    """One attempt of one analysis job."""

    job_id: uuid.UUID
    type: str
    data: dict[str, Any]
    options: dict[str, Any]
    """context, time_period, metrics_focus, question, template (resolved), agent_team."""
    sensitivity: str
    attempt: int
    settings: Settings
    should_abort: Callable[[], Awaitable[bool]]
    """True once the job was cancelled or its deadline passed: stop at the next checkpoint."""
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class AnalysisOutcome:
    """The ``data`` object of the result document (CONTRACT section 5) plus accounting."""

    result: dict[str, Any]
    """``{"analysis": {...}, "report_markdown": "...", "team": [...], "llm": {...}}``"""
    report_markdown: str = ""
    headline: str = ""
    provider: str = "pattern"
    degraded: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_eur: float = 0.0


AnalysisRunner = Callable[[JobContext, ProgressSink], Awaitable[AnalysisOutcome]]
