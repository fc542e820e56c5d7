"""Deterministic analytics: every KPI, bottleneck, anomaly, trend and recommendation of a
report. Pure functions over the submitted data: no database, no LLM.
"""

from workers.analytics.engine import analyze
from workers.analytics.errors import InvalidData, Problem
from workers.analytics.report import AnalyticsReport

__all__ = ["AnalyticsReport", "InvalidData", "Problem", "analyze"]
