"""Tabular data: column profiles, data quality, robust anomalies, correlations with multiple
testing control, and segment drivers (which groups of a category differ most).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats as st

from bi_engine.domain.result import Finding, Severity
from workers.analytics import stats
from workers.analytics.ingest.tabular import Table
from workers.analytics.parts import Part, finding, kpi, percent
from workers.analytics.rounding import frac, num, pct, pval

FloatArray = NDArray[np.float64]
MISSING_TOKENS = frozenset({"", "na", "n/a", "null", "none", "nan", "-", "#n/a"})
MIN_N = 10  # pairs below this never yield a correlation, however large r looks
ALPHA = 0.01
MAX_CORR_COLUMNS = 40
MAX_LEVELS = 20


@dataclass
class Column:
    """One column as the analyses see it: its kind, numeric values and quality facts."""

    name: str
    kind: str  # numeric, categorical, boolean, datetime, text, identifier, mixed, empty
    missing: NDArray[np.bool_]
    values: FloatArray | None = None
    labels: pd.Series | None = None
    unique: int = 0
    types: list[str] = field(default_factory=list)
    odd: list[str] = field(default_factory=list)  # values of the minority type

    @property
    def n(self) -> int:
        return int((~self.missing).sum())


def analyze(table: Table) -> Part:
    """Profiles and findings for one table."""
    frame = table.frame
    columns = [classify(str(name), frame[name]) for name in frame.columns]
    duplicates = int(frame.duplicated().sum()) if len(frame) and len(frame.columns) else 0
    part = Part(kpis=table_kpis(frame, columns, duplicates))
    part.findings += quality(table, columns, duplicates)
    part.findings += anomalies(columns)
    part.findings += correlations(columns)
    part.findings += segments(columns)
    part.facts["table"] = {
        "source": table.source,
        "rows": len(frame),
        "columns": [profile(c) for c in columns[:60]],
    }
    return part


# ----------------------------------------------------------------------------- typing
def classify(name: str, series: pd.Series) -> Column:
    """Decide what a column holds; numeric strings count as numbers."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return _categorical(name, series.astype(object), series.isna().to_numpy(), "boolean")
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        values = np.where(np.isinf(values), np.nan, values)
        return _numeric(name, values, np.isnan(values), ["number"], [])
    obj = series.astype(object)
    text = obj.where(obj.map(lambda v: isinstance(v, str)))
    missing = (obj.isna() | text.str.strip().str.lower().isin(MISSING_TOKENS)).to_numpy()
    present = obj[~missing]
    if present.empty:
        return Column(name, "empty", missing)
    kinds = present.map(_json_type)
    types = sorted(kinds.unique().tolist())
    numeric = pd.to_numeric(present.where(kinds != "boolean"), errors="coerce")
    if numeric.notna().mean() >= 0.9:
        values = np.full(len(obj), np.nan)
        values[~missing] = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
        odd = present[numeric.isna()].astype(str).unique()[:5].tolist()
        return _numeric(name, np.where(np.isinf(values), np.nan, values), missing, types, odd)
    if len(types) > 1:
        minority = kinds.value_counts().index[-1]
        odd = present[kinds == minority].astype(str).unique()[:5].tolist()
        col = _categorical(name, obj, missing, "mixed")
        col.types, col.odd = types, odd
        return col
    if types == ["boolean"]:
        return _categorical(name, obj, missing, "boolean")
    return _text(name, obj, missing)


def _json_type(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, int | float | np.integer | np.floating):
        return "number"
    return "string"


def _numeric(
    name: str, values: FloatArray, missing: NDArray[np.bool_], types: list[str], odd: list[str]
) -> Column:
    present = values[~np.isnan(values)]
    unique = int(np.unique(present).size)
    kind = "identifier" if _looks_like_id(name, present, unique) else "numeric"
    return Column(name, kind, missing, values=values, unique=unique, types=types, odd=odd)


def _looks_like_id(name: str, present: FloatArray, unique: int) -> bool:
    if present.size < 10 or unique != present.size or not np.all(present == np.round(present)):
        return False
    lowered = name.lower()
    named = lowered == "id" or lowered.endswith(("_id", " id", "id_", "number", "_no"))
    ordered = np.sort(present)
    consecutive = bool(np.all(np.diff(ordered) == 1))
    return named or consecutive


def _categorical(name: str, obj: pd.Series, missing: NDArray[np.bool_], kind: str) -> Column:
    labels = obj.where(~missing).map(lambda v: None if v is None else str(v))
    unique = int(labels.nunique())
    return Column(name, kind, missing, labels=labels, unique=unique, types=[])


def _text(name: str, obj: pd.Series, missing: NDArray[np.bool_]) -> Column:
    col = _categorical(name, obj, missing, "categorical")
    present = obj[~missing]
    dated = pd.to_datetime(present, errors="coerce", format="ISO8601", utc=True)
    if dated.notna().mean() >= 0.9:
        col.kind = "datetime"
    elif col.unique == col.n and col.n >= 10:
        col.kind = "identifier"
    elif col.unique > max(MAX_LEVELS, col.n // 2):
        col.kind = "text"
    return col


def profile(col: Column) -> dict[str, Any]:
    """A compact description of one column for the narrator."""
    total = len(col.missing)
    out: dict[str, Any] = {
        "column": col.name,
        "kind": col.kind,
        "count": col.n,
        "missing_rate": frac(col.missing.mean()) if total else 0.0,
        "unique": col.unique,
    }
    if col.values is not None and col.n:
        x = col.values[~np.isnan(col.values)]
        q = np.percentile(x, [0, 25, 50, 75, 100])
        out.update(
            mean=num(x.mean()),
            std=num(x.std(ddof=1) if x.size > 1 else 0.0),
            min=num(q[0]),
            p25=num(q[1]),
            median=num(q[2]),
            p75=num(q[3]),
            max=num(q[4]),
        )
    elif col.labels is not None and col.n:
        top = col.labels.value_counts().head(5)
        out["top"] = [
            [str(k), int(v)] for k, v in sorted(top.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
    return out


def table_kpis(frame: pd.DataFrame, columns: list[Column], duplicates: int) -> list[Any]:
    rows, cells = len(frame), len(frame) * max(len(columns), 1)
    missing_cells = sum(int(c.missing.sum()) for c in columns)
    complete = np.ones(rows, dtype=bool)
    for col in columns:
        complete &= ~col.missing
    out = [
        kpi("rows", rows, "rows", "Records"),
        kpi("columns", len(columns), "columns", "Fields"),
        kpi(
            "missing_cells_rate",
            missing_cells / cells if cells else 0.0,
            "ratio",
            "Share of empty cells",
            "empty cells / (rows * columns)",
        ),
        kpi(
            "complete_rows_rate",
            complete.mean() if rows else 0.0,
            "ratio",
            "Share of rows with every field filled",
        ),
        kpi("duplicate_rows", duplicates, "rows", "Exact duplicate rows"),
    ]
    for col in [c for c in columns if c.kind == "numeric" and c.n][:8]:
        x = col.values[~np.isnan(col.values)] if col.values is not None else np.array([])
        out.append(
            kpi(f"mean_{col.name}", x.mean(), "", f"Mean of {col.name}", f"mean({col.name})")
        )
    return out


# ----------------------------------------------------------------------------- quality
def quality(table: Table, columns: list[Column], duplicates: int) -> list[Finding]:
    """Missing values, duplicate rows, constant and mixed-type columns."""
    rows = len(table.frame)
    out = [f for col in columns for f in _column_quality(col, rows)]
    if duplicates:
        rate = duplicates / rows
        out.append(
            finding(
                "data_quality",
                table.source,
                f"{duplicates} duplicate rows",
                severity=_rate_severity(rate),
                confidence=1.0,
                detail=f"{duplicates} of {rows} rows repeat an earlier row exactly.",
                evidence={
                    "issue": "duplicates",
                    "duplicate_rows": duplicates,
                    "duplicate_rate": frac(rate),
                    "rows": rows,
                },
            )
        )
    return out


def _column_quality(col: Column, rows: int) -> list[Finding]:
    out = []
    missing = int(col.missing.sum())
    if missing and rows:
        rate = missing / rows
        out.append(
            finding(
                "data_quality",
                col.name,
                f"{col.name} is missing in {percent(rate)} of rows",
                severity=_rate_severity(rate),
                confidence=1.0,
                detail=f"{missing} of {rows} values of {col.name} are empty.",
                evidence={
                    "issue": "missing_values",
                    "missing": missing,
                    "missing_rate": frac(rate),
                    "rows": rows,
                },
            )
        )
    if col.n >= 2 and col.unique == 1:
        out.append(
            finding(
                "data_quality",
                col.name,
                f"{col.name} has the same value in every row",
                severity="low",
                confidence=1.0,
                detail=f"{col.name} is constant, so it cannot explain any difference between rows.",
                evidence={"issue": "constant", "unique": 1, "rows": rows},
            )
        )
    if len(col.types) > 1 or (col.odd and col.kind in ("numeric", "identifier")):
        out.append(_mixed(col))
    return out


def _mixed(col: Column) -> Finding:
    odd = len(col.odd)
    return finding(
        "data_quality",
        col.name,
        f"{col.name} mixes value types",
        severity="medium" if col.kind == "mixed" else "low",
        confidence=1.0,
        detail=f"{col.name} holds {', '.join(col.types)} values, e.g. {col.odd[:3]}; they were "
        + (
            "left out of the numeric analysis."
            if col.kind != "mixed"
            else "not analysed as numbers."
        ),
        evidence={
            "issue": "mixed_types",
            "types": col.types,
            "examples": col.odd[:5],
            "distinct_odd_values": odd,
        },
    )


def _rate_severity(rate: float) -> Severity:
    if rate >= 0.5:
        return "high"
    if rate >= 0.2:
        return "medium"
    return "low" if rate >= 0.05 else "info"


# ----------------------------------------------------------------------------- anomalies
def anomalies(columns: list[Column]) -> list[Finding]:
    """Robust outliers per numeric column (modified z > 3.5 from median and MAD).

    Positive, right-skewed columns are judged on a log scale; a column where more than 5% of
    the rows would be flagged has heavy tails, not anomalies, and yields nothing.
    """
    out = []
    for col in columns:
        if col.kind != "numeric" or col.values is None or col.n < 8:
            continue
        found = _outliers(col)
        if found is not None:
            out.append(found)
    return out


def _outliers(col: Column) -> Finding | None:
    assert col.values is not None
    rows = np.flatnonzero(~np.isnan(col.values))
    x = col.values[rows]
    logged = bool(np.all(x > 0) and _quartile_skew(x) > 0.2)
    z = stats.robust_z(np.log(x) if logged else x)
    limit = stats.outlier_threshold(x.size)
    flagged = np.flatnonzero(np.abs(z) > limit)
    if flagged.size == 0 or flagged.size > 0.05 * x.size:
        return None
    top = float(np.max(np.abs(z[flagged])))
    severity: Severity = "high" if top >= 20 else ("medium" if top >= 8 else "low")
    points = rows[flagged]
    return finding(
        "anomaly",
        col.name,
        f"{flagged.size} unusual values in {col.name}",
        severity=severity,
        confidence=0.9 if x.size >= 30 else 0.6,
        detail=f"{flagged.size} of {x.size} values of {col.name} lie far from the median "
        f"{num(np.median(x))} (robust z above {round(limit, 2)}).",
        evidence={
            "points": points[:25].tolist(),
            "values": [num(v) for v in x[flagged][:25]],
            "count": int(flagged.size),
            "rows": int(x.size),
            "share_of_rows": frac(flagged.size / x.size),
            "median": num(np.median(x)),
            "max_robust_z": num(top),
            "threshold_z": round(limit, 2),
            "scale": "log" if logged else "linear",
            "method": "median_mad",
        },
    )


# ----------------------------------------------------------------------------- correlations
def correlations(columns: list[Column]) -> list[Finding]:
    """Significant monotonic associations (Spearman, BH-corrected, n >= 10), strongest first."""
    numeric = [c for c in columns if c.kind == "numeric" and c.n >= MIN_N and c.unique > 1]
    numeric = numeric[:MAX_CORR_COLUMNS]
    if len(numeric) < 2:
        return []
    frame = pd.DataFrame({i: c.values for i, c in enumerate(numeric)})
    present = frame.notna().to_numpy(dtype=np.float64)
    counts = present.T @ present
    pearson = frame.corr(min_periods=MIN_N).to_numpy()
    rho = frame.rank().corr(min_periods=MIN_N).to_numpy()
    iu = np.triu_indices(len(numeric), k=1)
    r_s, n = np.nan_to_num(rho[iu]), counts[iu]
    p_adj = stats.fdr(stats.corr_p_value(r_s, n))
    keep = np.flatnonzero((n >= MIN_N) & (p_adj < ALPHA) & (np.abs(r_s) >= 0.3))
    keep = keep[np.lexsort((keep, -np.abs(r_s[keep])))][:10]
    return [
        _correlation(
            numeric[iu[0][k]].name,
            numeric[iu[1][k]].name,
            float(pearson[iu][k]),
            float(r_s[k]),
            float(p_adj[k]),
            int(n[k]),
        )
        for k in keep
    ]


def _quartile_skew(x: FloatArray) -> float:
    """Bowley skewness: unlike the moment skewness, the outliers cannot produce it."""
    q1, q2, q3 = np.percentile(x, [25, 50, 75])
    return float((q3 + q1 - 2 * q2) / (q3 - q1)) if q3 > q1 else 0.0


def _correlation(a: str, b: str, r: float, rho: float, p: float, n: int) -> Finding:
    strength = abs(rho)
    severity: Severity = "high" if strength >= 0.7 else ("medium" if strength >= 0.5 else "low")
    direction = "positive" if rho > 0 else "negative"
    return finding(
        "correlation",
        a,
        f"{a} and {b} move {'together' if rho > 0 else 'in opposite directions'}",
        severity=severity,
        confidence=stats.confidence(p, n),
        detail=f"Across {n} rows, {a} and {b} have a {direction} correlation "
        f"(Spearman {num(rho, 2)}, Pearson {num(r, 2)}).",
        evidence={
            "with": b,
            "r": num(r, 2),
            "rho": num(rho, 2),
            "p_value": pval(p),
            "n": n,
            "direction": direction,
            "method": "spearman",
        },
    )


# ----------------------------------------------------------------------------- segments
def segments(columns: list[Column]) -> list[Finding]:
    """Which categorical column splits a numeric one into the most different groups
    (Kruskal-Wallis on ranks, epsilon-squared effect size, BH-corrected)."""
    cats = [
        c for c in columns if c.kind in ("categorical", "boolean") and 2 <= c.unique <= MAX_LEVELS
    ]
    nums = [c for c in columns if c.kind == "numeric" and c.n >= MIN_N][:20]
    tests = [t for cat in cats[:10] for num_col in nums if (t := _kruskal(cat, num_col))]
    if not tests:
        return []
    p_adj = stats.fdr(np.array([t["p"] for t in tests]))
    order = {c.name: i for i, c in enumerate(columns)}
    kept = [(t, p) for t, p in zip(tests, p_adj, strict=True) if p < ALPHA and t["eta2"] >= 0.03]
    kept.sort(key=lambda tp: (-tp[0]["eta2"], tp[0]["segment"], tp[0]["measure"]))
    return [_segment(t, float(p), order) for t, p in kept[:5]]


def _kruskal(cat: Column, col: Column) -> dict[str, Any] | None:
    assert cat.labels is not None
    assert col.values is not None
    ok = ~np.isnan(col.values) & cat.labels.notna().to_numpy()
    frame = pd.DataFrame({"g": cat.labels.to_numpy()[ok], "x": col.values[ok]})
    sizes = frame["g"].value_counts()
    frame = frame[frame["g"].isin(sizes[sizes >= 3].index)]
    groups = frame["g"].nunique()
    n = len(frame)
    if groups < 2 or n <= groups:
        return None
    ranks = st.rankdata(frame["x"].to_numpy())
    mean_rank = pd.Series(ranks).groupby(frame["g"].to_numpy()).agg(["mean", "size"])
    h = (
        12
        / (n * (n + 1))
        * float((mean_rank["size"] * (mean_rank["mean"] - (n + 1) / 2) ** 2).sum())
    )
    ties = frame["x"].value_counts().to_numpy(dtype=np.float64)
    correction = 1 - float((ties**3 - ties).sum()) / (n**3 - n) if n > 1 else 1.0
    if correction <= 0:
        return None
    h /= correction
    medians = frame.groupby("g")["x"].median()
    return {
        "segment": cat.name,
        "measure": col.name,
        "h": h,
        "n": n,
        "groups": groups,
        "p": float(st.chi2.sf(h, groups - 1)),
        "eta2": max(0.0, (h - groups + 1) / (n - groups)),
        "medians": medians,
        "sizes": frame["g"].value_counts(),
    }


def _segment(test: dict[str, Any], p: float, order: dict[str, int]) -> Finding:
    seg, measure = test["segment"], test["measure"]
    subject, other = (seg, measure) if order[seg] < order[measure] else (measure, seg)
    medians = test["medians"].sort_values(ascending=False, kind="mergesort")
    top, bottom = str(medians.index[0]), str(medians.index[-1])
    gap = (
        (medians.iloc[0] - medians.iloc[-1]) / abs(medians.iloc[-1]) * 100
        if medians.iloc[-1]
        else None
    )
    eta2 = test["eta2"]
    severity: Severity = "high" if eta2 >= 0.14 else ("medium" if eta2 >= 0.06 else "low")
    return finding(
        "correlation",
        subject,
        f"{measure} differs by {seg}",
        severity=severity,
        confidence=stats.confidence(p, test["n"]),
        detail=f"{measure} is highest for {seg} {top} (median {num(medians.iloc[0])}) and lowest "
        f"for {bottom} (median {num(medians.iloc[-1])}).",
        evidence={
            "with": other,
            "segment": seg,
            "measure": measure,
            "r": num(np.sqrt(eta2), 2),
            "eta_squared": num(eta2, 3),
            "p_value": pval(p),
            "n": test["n"],
            "method": "kruskal_wallis",
            "groups": [str(g) for g in medians.index],
            "group_medians": [num(v) for v in medians.to_numpy()],
            "group_sizes": [int(test["sizes"][g]) for g in medians.index],
            "top_group": top,
            "bottom_group": bottom,
            "top_vs_bottom_pct": pct(gap) if gap is not None else None,
        },
    )
