"""Helpers for the AI Team tests: samples, a recording progress sink, job contexts, and the
result-shape check of CONTRACT section 5."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bi_engine.domain.result import Analysis
from bi_engine.settings import Settings
from workers.crew.runner import WATCH_TASK_NAME
from workers.job import JobContext

SAMPLES_DIR = Path(__file__).resolve().parents[3] / "bi_engine" / "samples"
ANALYSIS_TYPES = (
    "process_analysis",
    "data_interpretation",
    "trend_analysis",
    "optimization_review",
    "custom_analysis",
)


def sample(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((SAMPLES_DIR / f"{name}.json").read_text())
    return body


def body_for(analysis_type: str) -> dict[str, Any]:
    """A sample submission of each type (custom: a question over the process log)."""
    by_type = {
        "process_analysis": "process_log",
        "optimization_review": "n8n_executions",
        "trend_analysis": "sales_series",
        "data_interpretation": "customer_dataset",
    }
    if analysis_type == "custom_analysis":
        body = sample("process_log")
        body["type"] = "custom_analysis"
        body["data"] = {**body["data"], "question": "Where do invoices wait, and what to automate?"}
        return body
    return sample(by_type[analysis_type])


@dataclass
class RecordingSink:
    """A ProgressSink that keeps every update."""

    updates: list[tuple[int, str, str, str | None]] = field(default_factory=list)

    async def progress(
        self, percent: int, step: str, message: str, agent: str | None = None
    ) -> None:
        self.updates.append((percent, step, message, agent))

    @property
    def percents(self) -> list[int]:
        return [u[0] for u in self.updates]


class AbortSwitch:
    """``should_abort`` for a context: flips to True on demand or after ``after`` checks.

    Only the runner's checkpoints count (analytics done, each task finished); the timed
    polls of its abort watcher see the switch without counting, so ``after`` means the
    same on a busy machine as on an idle one.
    """

    def __init__(self, after: int | None = None) -> None:
        self.after = after
        self.calls = 0
        self.on = False

    async def __call__(self) -> bool:
        current = asyncio.current_task()
        if current is not None and current.get_name() == WATCH_TASK_NAME:
            return self.on
        self.calls += 1
        if self.after is not None and self.calls >= self.after:
            self.on = True
        return self.on


async def _never() -> bool:
    return False


def context(
    analysis_type: str,
    *,
    settings: Settings | None = None,
    body: dict[str, Any] | None = None,
    sensitivity: str = "normal",
    attempt: int = 1,
    job_id: uuid.UUID | None = None,
    should_abort: Callable[[], Any] | None = None,
    extras: dict[str, Any] | None = None,
) -> JobContext:
    body = body or body_for(analysis_type)
    options: dict[str, Any] = {
        k: body[k] for k in ("context", "time_period", "metrics_focus") if k in body
    }
    return JobContext(
        job_id=job_id or uuid.uuid4(),
        type=analysis_type,
        data=body["data"],
        options=options,
        sensitivity=sensitivity,
        attempt=attempt,
        settings=settings or Settings(),
        should_abort=should_abort or _never,
        extras=extras or {},
    )


def check_result(result: dict[str, Any]) -> Analysis:
    """The ``data`` object of CONTRACT section 5, field by field."""
    assert set(result) >= {"analysis", "report_markdown", "team", "llm", "quality"}
    analysis = Analysis.model_validate(result["analysis"])
    assert analysis.summary.headline
    assert analysis.summary.executive_summary
    assert result["report_markdown"].startswith("# ")
    assert result["team"], "the team is listed"
    for member in result["team"]:
        assert set(member) == {"agent", "display", "tasks"}
        assert member["tasks"] >= 1
    llm = result["llm"]
    assert set(llm) >= {"provider", "tried", "tokens", "cost_eur", "degraded"}
    assert set(llm["tokens"]) == {"prompt", "completion"}
    assert isinstance(llm["cost_eur"], float)
    assert llm["cost_eur"] >= 0
    json.dumps(result, allow_nan=False)
    return analysis
