"""Deterministic analytics: every KPI, bottleneck, anomaly, trend and recommendation of a
report. Pure functions over the submitted data: no database, no LLM.

Module map::

    engine.py      analyze(analysis_type, data, metrics_focus=...) -> AnalyticsReport
    ingest/        every data shape of CONTRACT section 7 -> Dataset; InvalidData with locations
    process.py     cycle times, per-step statistics, bottlenecks, failure hotspots, rework,
                   variants            (automation.py: automation candidates, savings, ROI)
    tabular.py     column profiles, data quality, robust anomalies, correlations, segments
    timeseries.py  trend, seasonality, level shifts, anomalies, forecast
    kpis.py        business ratios from ``metrics``, each with its formula
    recommend.py   recommendations and roadmap from the findings
    toolkit.py     the same results as the AI assistants' tools
    synthetic.py   planted-signal datasets for the tests and the bundled samples
"""

from workers.analytics.engine import analyze
from workers.analytics.errors import InvalidData, Problem
from workers.analytics.report import AnalyticsReport

__all__ = ["AnalyticsReport", "InvalidData", "Problem", "analyze"]
