"""Shared parsing rules: status words, timestamps, numbers, each vectorised for 1M rows."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from workers.analytics.errors import Loc, ProblemLog

FloatArray = NDArray[np.float64]

#: n8n's status words plus the common synonyms of CONTRACT section 7.
STATUS_WORDS: dict[str, str] = {
    "success": "success",
    "succeeded": "success",
    "successful": "success",
    "completed": "success",
    "complete": "success",
    "done": "success",
    "ok": "success",
    "error": "error",
    "failed": "error",
    "failure": "error",
    "crashed": "crashed",
    "canceled": "canceled",
    "cancelled": "canceled",
    "waiting": "waiting",
    "new": "waiting",
    "running": "running",
    "unknown": "unknown",
}
FAILED = frozenset({"error", "crashed"})
FINISHED = frozenset({"success", "error", "crashed"})

_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
_MS_THRESHOLD = 1e11  # epoch numbers above this are milliseconds
_EARLIEST, _LATEST = -2_208_988_800.0, 7_258_118_400.0  # 1900-01-01 .. 2200-01-01


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def require_list(data: dict[str, Any], key: str, log: ProblemLog) -> list[Any] | None:
    """``data[key]`` as a non-empty list, or a problem at ``("data", key)``."""
    value = data.get(key)
    if not isinstance(value, list):
        log.add(("data", key), "must be a list")
        return None
    if not value:
        log.add(("data", key), "must contain at least one item")
        return None
    return value


def per_unique(values: Sequence[Any], fn: Callable[[Any], Any]) -> NDArray[np.object_]:
    """``fn`` applied to each distinct value only (a million status words are a handful of
    distinct ones); falls back to every value when they are not all strings."""
    try:
        codes, uniques = pd.factorize(pd.Series(values, dtype=object))
    except TypeError:
        uniques = None
    kinds = {type(u) for u in uniques} if uniques is not None else {list}
    if not (kinds <= {str} or kinds <= {bool}):  # factorize would merge True with 1
        out = np.empty(len(values), dtype=object)
        out[:] = [fn(v) for v in values]
        return out
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:] = [*(fn(u) for u in uniques), fn(None)]
    return np.asarray(mapped[codes], dtype=object)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


_BAD = "\x00bad"


def statuses(
    values: Sequence[Any], locs: Callable[[int], Loc], log: ProblemLog, default: str = "success"
) -> NDArray[np.object_]:
    """Normalise status words; missing ones get ``default``; unknown words are problems."""

    def word(value: Any) -> str:
        if _missing(value):
            return default
        if type(value) is str:
            return STATUS_WORDS.get(value.strip().lower(), _BAD)
        return _BAD

    out = per_unique(values, word)
    bad = np.flatnonzero(out == _BAD)
    for i in bad[:10]:
        log.add(locs(int(i)), f"unknown status {values[int(i)]!r}; use one of {_status_list()}")
    out[bad] = default
    return out


def _status_list() -> str:
    return ", ".join(sorted(set(STATUS_WORDS)))


def times(
    values: Sequence[Any], locs: Callable[[int], Loc], log: ProblemLog, required: bool
) -> FloatArray:
    """Timestamps as float seconds since the epoch (NaN when absent); bad values are problems.

    Accepts ISO 8601 strings (naive means UTC) and epoch numbers in seconds or milliseconds.
    """
    out = np.full(len(values), np.nan)
    if not values:
        return out
    if all(type(v) is str for v in values):
        out = _parse_strings(list(values))
        bad_mask = np.isnan(out)
    else:
        kinds = np.array([_kind(v) for v in values])
        text = np.flatnonzero(kinds == 1)
        if text.size:
            out[text] = _parse_strings([values[int(i)] for i in text])
        nums = np.flatnonzero(kinds == 2)
        if nums.size:
            raw = np.array([float(values[int(i)]) for i in nums])
            out[nums] = np.where(np.abs(raw) > _MS_THRESHOLD, raw / 1000.0, raw)
        bad_mask = np.isnan(out) & (kinds != 0) | (kinds == 3)
        if required:
            bad_mask |= kinds == 0
    outside = (out < _EARLIEST) | (out > _LATEST)
    out[outside] = np.nan
    bad_mask |= outside
    for i in np.flatnonzero(bad_mask)[:10]:
        value = values[int(i)]
        msg = "is required" if value is None else f"is not a timestamp: {str(value)[:40]!r}"
        log.add(locs(int(i)), msg)
    return out


def _kind(value: Any) -> int:
    if value is None:
        return 0
    if type(value) is str:
        return 1
    if is_number(value) and math.isfinite(float(value)):
        return 2
    return 3


def _parse_strings(values: list[str]) -> FloatArray:
    parsed = pd.to_datetime(
        pd.Series(values, dtype=object), utc=True, format="ISO8601", errors="coerce"
    )
    if parsed.isna().any():
        retry = pd.to_datetime(
            pd.Series(values, dtype=object), utc=True, format="mixed", errors="coerce"
        )
        parsed = parsed.fillna(retry)
    seconds = (parsed - _EPOCH) / pd.Timedelta(seconds=1)
    return np.array(seconds.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def numbers(values: Sequence[Any], locs: Callable[[int], Loc], log: ProblemLog) -> FloatArray:
    """Optional numbers (costs); numeric strings are accepted."""
    if all(value is None for value in values):
        return np.full(len(values), np.nan)
    series = pd.Series(values, dtype=object)
    out = pd.to_numeric(series.where(~series.map(lambda v: isinstance(v, bool))), errors="coerce")
    arr = np.array(out.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    bad = np.flatnonzero(np.isnan(arr) & series.notna().to_numpy() | np.isinf(arr))
    for i in bad[:10]:
        log.add(locs(int(i)), f"is not a number: {str(values[int(i)])[:40]!r}")
    arr[np.isinf(arr)] = np.nan
    return arr


_FLAGS: dict[Any, float] = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0}


def flags(values: Sequence[Any]) -> FloatArray:
    """Optional booleans as 1.0/0.0, NaN when absent ("manual" flags)."""

    def flag(value: Any) -> float:
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if type(value) is int and value in (0, 1):
            return float(value)
        return _FLAGS.get(value.strip().lower(), np.nan) if isinstance(value, str) else np.nan

    if all(value is None for value in values):
        return np.full(len(values), np.nan)
    return np.asarray(per_unique(values, flag), dtype=np.float64)


def texts(
    values: Sequence[Any], locs: Callable[[int], Loc], log: ProblemLog, what: str
) -> list[str]:
    """Required names (step, activity, case id): strings, or numbers spelled as the input does."""

    def text(value: Any) -> str:
        if type(value) is str and value.strip():
            return value
        if is_number(value) and not _missing(value):
            return str(value)
        return _BAD

    out = per_unique(values, text)
    bad = np.flatnonzero(out == _BAD)
    for i in bad[:10]:
        log.add(locs(int(i)), f"{what} is required (a non-empty string)")
    out[bad] = ""
    return list(out)
