"""Input detection and parsing for every data shape of CONTRACT section 7.

``load`` checks the whole input first and raises one ``InvalidData`` listing every problem
with its location, so a job fails with ``invalid_data`` saying where the data is wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from workers.analytics.errors import InvalidData, Problem, ProblemLog
from workers.analytics.ingest import common, process, series, tabular
from workers.analytics.ingest.process import ProcessLog
from workers.analytics.ingest.series import Series
from workers.analytics.ingest.tabular import Table

__all__ = ["ANALYSIS_TYPES", "Dataset", "ProcessLog", "Series", "Table", "detect", "load"]

MAX_ROWS = 1_000_000
PROCESS_KEYS = ("runs", "events", "n8n_executions")
ANALYSIS_TYPES = (
    "process_analysis",
    "optimization_review",
    "data_interpretation",
    "trend_analysis",
    "custom_analysis",
)


@dataclass
class Dataset:
    """The parsed parts of one input; any of them may be absent."""

    formats: list[str] = field(default_factory=list)
    process: ProcessLog | None = None
    table: Table | None = None
    series: list[Series] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    hourly_rate: float | None = None

    @property
    def description(self) -> str:
        return "+".join(self.formats) or "empty"


def detect(analysis_type: str, data: dict[str, Any]) -> list[str]:
    """The formats to analyse for this type, e.g. ``["runs", "metrics"]``."""
    process_key = next((key for key in PROCESS_KEYS if key in data), None)
    table_key = "records" if "records" in data else ("csv" if "csv" in data else None)
    timed = "records" in data and "time_field" in data
    found: list[str | None] = []
    if analysis_type in ("process_analysis", "optimization_review"):
        found = [process_key]
    elif analysis_type == "data_interpretation":
        found = [table_key, "records+time_field" if timed else None]
    elif analysis_type == "trend_analysis":
        found = ["series" if "series" in data else ("records+time_field" if table_key else None)]
    else:
        series_key = "series" if "series" in data else None
        tab = None if timed else table_key
        found = [process_key, tab, series_key, "records+time_field" if timed else None]
    if isinstance(data.get("metrics"), dict) or "metrics" in data:
        found.append("metrics")
    return [key for key in found if key]


def load(analysis_type: str, data: Any) -> Dataset:
    """Parse ``data`` for ``analysis_type``; raises ``InvalidData`` listing every problem."""
    if analysis_type not in ANALYSIS_TYPES:
        raise InvalidData([Problem(("type",), f"unknown analysis type {analysis_type!r}")])
    if not isinstance(data, dict):
        raise InvalidData([Problem(("data",), "must be an object")])
    formats = detect(analysis_type, data)
    if not formats:
        raise InvalidData([Problem(("data",), _expected(analysis_type))])
    log = ProblemLog()
    dataset = Dataset(formats=formats)
    for key in formats:
        _parse(key, data, dataset, log)
    dataset.hourly_rate = _hourly_rate(data.get("costs"), log)
    _check_size(dataset, log)
    log.raise_if_any()
    return dataset


def _expected(analysis_type: str) -> str:
    wanted = {
        "process_analysis": "runs, events or n8n_executions",
        "optimization_review": "runs, events or n8n_executions",
        "data_interpretation": "records or csv",
        "trend_analysis": "series, or records with time_field",
    }.get(analysis_type, "runs, events, n8n_executions, records, csv, series or metrics")
    return f"{analysis_type} needs one of: {wanted} (or metrics)"


def _parse(key: str, data: dict[str, Any], dataset: Dataset, log: ProblemLog) -> None:
    if key == "metrics":
        dataset.metrics = _metrics(data.get("metrics"), log)
        return
    if key == "csv":
        dataset.table = tabular.from_csv(data.get("csv"), log)
        return
    items = common.require_list(data, key.split("+")[0], log)
    if items is None:
        return
    if key in PROCESS_KEYS:
        dataset.process = _process(key, items, log)
    elif key == "records":
        dataset.table = tabular.from_records(items, log)
    elif key == "series":
        dataset.series = series.from_series(items, log)
    else:
        dataset.series = series.from_records(data, items, log)


def _process(key: str, items: list[Any], log: ProblemLog) -> ProcessLog:
    parse = {
        "runs": process.from_runs,
        "events": process.from_events,
        "n8n_executions": process.from_n8n,
    }[key]
    parsed = parse(items, log)
    if parsed.steps.empty and not log:
        log.add(("data", key), "holds no step executions to analyse")
    return parsed


def _metrics(raw: Any, log: ProblemLog) -> dict[str, float]:
    if not isinstance(raw, dict):
        log.add(("data", "metrics"), 'must be an object of figures, e.g. {"sales": 10000}')
        return {}
    out: dict[str, float] = {}
    for name, value in raw.items():
        number = _figure(value)
        if number is None:
            log.add(("data", "metrics", str(name)), f"is not a finite number: {str(value)[:40]!r}")
        else:
            out[str(name)] = number
    return out


def _figure(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            value = float(value.replace(",", "").strip())
        except ValueError:
            return None
    if not common.is_number(value) or not math.isfinite(float(value)):
        return None
    return float(value)


def _hourly_rate(costs: Any, log: ProblemLog) -> float | None:
    if costs is None:
        return None
    rate = costs.get("hourly_rate") if isinstance(costs, dict) else None
    if not isinstance(costs, dict):
        log.add(("data", "costs"), 'must be an object like {"hourly_rate": 45}')
    elif rate is not None and (_figure(rate) is None or float(rate) < 0):
        log.add(("data", "costs", "hourly_rate"), "must be a non-negative number")
    return _figure(rate) if rate is not None else None


def _check_size(dataset: Dataset, log: ProblemLog) -> None:
    rows = sum(s.t.size for s in dataset.series)
    rows += len(dataset.process.steps) if dataset.process else 0
    rows += len(dataset.table.frame) if dataset.table else 0
    if rows > MAX_ROWS:
        log.add(("data",), f"{rows} rows is more than the limit of {MAX_ROWS:,}")
