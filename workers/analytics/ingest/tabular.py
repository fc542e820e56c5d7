"""Records and CSV text into one frame; typing of the columns is left to the analysis."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from workers.analytics.errors import ProblemLog


@dataclass
class Table:
    """Rows as given (``source`` is the input key: ``records`` or ``csv``)."""

    source: str
    frame: pd.DataFrame


def from_records(records: list[Any], log: ProblemLog) -> Table:
    """``{"records": [{...}, ...]}``; nested values are kept as JSON text."""
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            log.add(("data", "records", i), "must be an object")
            break
    else:
        if not any(records):
            log.add(("data", "records"), "records have no fields")
    if log:
        return Table("records", pd.DataFrame())
    frame = pd.DataFrame.from_records(records)
    frame.columns = [str(c) for c in frame.columns]
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].map(_flat)
    return Table("records", frame)


def _flat(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return value


def from_csv(text: Any, log: ProblemLog) -> Table:
    """``{"csv": "a,b\\n1,2"}``: header row first; the delimiter is sniffed (, ; tab |)."""
    if not isinstance(text, str) or not text.strip():
        log.add(("data", "csv"), "must be non-empty CSV text with a header row")
        return Table("csv", pd.DataFrame())
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=_delimiter(text), dtype=object, skipinitialspace=True
        )
    except (ValueError, pd.errors.ParserError, csv.Error) as exc:
        log.add(("data", "csv"), f"cannot be parsed as CSV: {str(exc).splitlines()[0][:160]}")
        return Table("csv", pd.DataFrame())
    if frame.empty:
        log.add(("data", "csv"), "has a header but no data rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    return Table("csv", frame)


def _delimiter(text: str) -> str:
    header = text.lstrip().splitlines()[0]
    counts = {sep: header.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","
