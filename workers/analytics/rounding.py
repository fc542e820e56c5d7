"""Rounding and JSON-safety: the narrator quotes these numbers, so they must be short and finite."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def _finite(x: Any) -> float | None:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def num(x: Any, digits: int | None = None) -> float | int | None:
    """A finite number rounded for humans: 3 significant digits below 1, fewer decimals above."""
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int | np.integer):
        return int(x)
    value = _finite(x)
    if value is None:
        return None
    if digits is not None:
        return round(value, digits) + 0.0
    size = abs(value)
    if size == 0:
        return 0.0
    if size >= 100:
        return round(value, 1) + 0.0
    if size >= 1:
        return round(value, 2) + 0.0
    return round(value, 2 - math.floor(math.log10(size))) + 0.0


def frac(x: Any) -> float | None:
    """A fraction 0..1 (keys ending ``_rate`` or containing ``share``), 3 decimals."""
    value = _finite(x)
    return None if value is None else round(min(max(value, 0.0), 1.0), 3) + 0.0


def pct(x: Any) -> float | None:
    """A percentage (keys ending ``_pct``), 1 decimal."""
    value = _finite(x)
    return None if value is None else round(value, 1) + 0.0


def pval(x: Any) -> float | None:
    """A p-value with 3 significant digits, never exactly 0 (which would overstate certainty)."""
    value = _finite(x)
    if value is None:
        return None
    value = min(max(value, 1e-300), 1.0)
    return float(f"{value:.3g}")


def iso(ts: Any) -> str | None:
    """ISO 8601: a date when the time is midnight, else a UTC timestamp."""
    if ts is None:
        return None
    stamp = pd.Timestamp(ts)
    if pd.isna(stamp):
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    if stamp == stamp.normalize():
        return str(stamp.date().isoformat())
    return str(stamp.isoformat(timespec="seconds")) + "Z"


def clean(obj: Any) -> Any:
    """Deep-convert to plain JSON: numpy scalars to Python, NaN/inf to None, dates to ISO."""
    if obj is None or isinstance(obj, str | bool):
        return obj
    if isinstance(obj, int | np.integer | float | np.floating):
        return num(obj) if isinstance(obj, float | np.floating) else int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, dt.datetime | dt.date | pd.Timestamp | np.datetime64):
        return iso(obj)
    if isinstance(obj, Mapping):
        return {str(key): clean(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset | np.ndarray):
        items = sorted(obj, key=str) if isinstance(obj, set | frozenset) else obj
        return [clean(item) for item in items]
    return str(obj)
