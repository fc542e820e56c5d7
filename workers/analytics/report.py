"""What ``analyze`` returns: the contract's ``Analysis`` plus compact facts for the narrator."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bi_engine.domain.result import Analysis


class AnalyticsReport(BaseModel):
    """The analysis (summary left empty for the narrator), facts per area, and the format seen."""

    model_config = ConfigDict(extra="forbid")

    analysis: Analysis
    facts: dict[str, Any] = Field(default_factory=dict)
    dataset: str = ""
