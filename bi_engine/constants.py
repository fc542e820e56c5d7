"""Names and numbers the whole engine agrees on."""

from __future__ import annotations

from typing import Final

API_PREFIX: Final = "/api/business-intelligence"


def events_channel(schema: str) -> str:
    """The NOTIFY channel of the analysis_events trigger (channel names are database-wide)."""
    return f"{schema}_events"


DEFAULT_SCHEMA: Final = "bi"
REPORTING_ROLE: Final = "bi_reporting"
DEV_JWT_SECRET: Final = "development-secret-change-me-before-production"
DEFAULT_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
DEFAULT_JOB_TIMEOUT_S: Final = 900

ANALYSIS_TYPES: Final = (
    "process_analysis",
    "data_interpretation",
    "trend_analysis",
    "optimization_review",
    "custom_analysis",
    "test",
)
STATUSES: Final = ("queued", "running", "completed", "failed", "cancelled")
TERMINAL_STATUSES: Final = frozenset({"completed", "failed", "cancelled"})
PRIORITIES: Final = ("high", "normal", "low")
PROCRASTINATE_PRIORITY: Final = {"high": 20, "normal": 10, "low": 0}
"""procrastinate runs higher numbers first."""

SENSITIVITIES: Final = ("normal", "confidential")
EVENT_KINDS: Final = ("status", "progress", "completed", "failed", "cancelled")

TASK_RUN_ANALYSIS: Final = "bi.run_analysis"
TASK_DELIVER_CALLBACK: Final = "bi.deliver_callback"
QUEUE_ANALYSES: Final = "analyses"
QUEUE_CALLBACKS: Final = "callbacks"
QUEUE_MAINTENANCE: Final = "maintenance"
