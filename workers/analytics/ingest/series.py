"""Time series: ``series`` lists, or records with ``time_field``/``value_fields``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from workers.analytics.errors import Loc, ProblemLog
from workers.analytics.ingest import common

FloatArray = NDArray[np.float64]


@dataclass
class Series:
    """One named series, sorted by time (epoch seconds), duplicates of a time merged."""

    name: str
    t: FloatArray
    v: FloatArray


def from_series(items: list[Any], log: ProblemLog) -> list[Series]:
    """``{"series": [{"name": "revenue", "points": [{"t": "2026-01-01", "v": 10}]}]}``."""
    out: list[Series] = []
    names: set[str] = set()
    for si, item in enumerate(items):
        if not isinstance(item, dict):
            log.add(("data", "series", si), "must be an object with name and points")
            continue
        name, points = item.get("name"), item.get("points")
        if not isinstance(name, str) or not name.strip():
            log.add(("data", "series", si, "name"), "is required (a non-empty string)")
        elif name in names:
            log.add(("data", "series", si, "name"), f"duplicate series name {name!r}")
        if not isinstance(points, list) or not points:
            log.add(("data", "series", si, "points"), "must be a non-empty list of {t, v}")
            continue
        names.add(str(name))
        parsed = _points(points, si, log)
        if parsed is not None:
            out.append(Series(str(name), *_merge(*parsed, how="mean")))
    return out


def _points(points: list[Any], si: int, log: ProblemLog) -> tuple[FloatArray, FloatArray] | None:
    ts: list[Any] = []
    vs: list[Any] = []
    for pi, point in enumerate(points):
        if isinstance(point, dict):
            ts.append(point.get("t"))
            vs.append(point.get("v"))
        elif isinstance(point, list | tuple) and len(point) == 2:
            ts.append(point[0])
            vs.append(point[1])
        else:
            log.add(("data", "series", si, "points", pi), "must be {t, v}")
            return None
    t = common.times(ts, lambda i: ("data", "series", si, "points", i, "t"), log, required=True)
    v = common.numbers(vs, lambda i: ("data", "series", si, "points", i, "v"), log)
    return t, v


def _merge(t: FloatArray, v: FloatArray, how: str) -> tuple[FloatArray, FloatArray]:
    """Drop missing values, sort by time and merge points that share a time."""
    keep = ~(np.isnan(t) | np.isnan(v))
    frame = pd.DataFrame({"t": t[keep], "v": v[keep]})
    merged = frame.groupby("t", sort=True)["v"].agg(how)
    return (
        np.asarray(merged.index.to_numpy(dtype=np.float64), dtype=np.float64),
        np.asarray(merged.to_numpy(dtype=np.float64), dtype=np.float64),
    )


def from_records(data: dict[str, Any], records: list[Any], log: ProblemLog) -> list[Series]:
    """Records with ``time_field`` and ``value_fields``: a series per value field, summed per time.

    Summing suits the usual input (transactions or daily rows); without ``value_fields`` every
    numeric field becomes a series.
    """
    field = data.get("time_field")
    if not isinstance(field, str) or not field:
        log.add(("data", "time_field"), "is required with records (the name of the time field)")
        return []
    rows = [r if isinstance(r, dict) else {} for r in records]
    if not any(field in r for r in rows):
        log.add(("data", "time_field"), f"no record has the field {field!r}")
        return []
    frame = pd.DataFrame.from_records(rows)
    t = common.times(
        frame[field].astype(object).where(frame[field].notna(), None).tolist(),
        lambda i: ("data", "records", i, field),
        log,
        required=True,
    )
    fields = _value_fields(data, frame, field, log)
    out = []
    for name in fields:
        raw = frame[name].astype(object).where(frame[name].notna(), None).tolist()
        v = common.numbers(raw, _record_loc(name), log)
        out.append(Series(name, *_merge(t, v, how="sum")))
    return out


def _record_loc(name: str) -> Callable[[int], Loc]:
    return lambda i: ("data", "records", i, name)


def _value_fields(
    data: dict[str, Any], frame: pd.DataFrame, field: str, log: ProblemLog
) -> list[str]:
    fields = data.get("value_fields")
    if fields is None:
        numeric = [c for c in frame.columns if c != field and _numeric(frame[c])]
        if not numeric:
            log.add(("data", "value_fields"), "no numeric field found; name them in value_fields")
        return [str(c) for c in numeric]
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        log.add(("data", "value_fields"), "must be a non-empty list of field names")
        return []
    for i, name in enumerate(fields):
        if name not in frame.columns:
            log.add(("data", "value_fields", i), f"no record has the field {name!r}")
    return [f for f in dict.fromkeys(fields) if f in frame.columns]


def _numeric(column: pd.Series) -> bool:
    values = column.dropna()
    if values.empty or values.map(type).eq(bool).all():
        return False
    return bool(pd.to_numeric(values, errors="coerce").notna().mean() >= 0.9)
