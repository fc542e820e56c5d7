"""Time series: trend (OLS with autocorrelation-robust errors), seasonality (classical
decomposition, F-tested), level shifts (sup-F binary segmentation, Andrews 1993), anomalies
on the residuals and a short forecast with a 95% interval.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats as st
from statsmodels.regression.linear_model import OLS
from statsmodels.tsa.seasonal import seasonal_decompose
from statsmodels.tsa.stattools import acf

from bi_engine.domain.result import Finding, Severity
from workers.analytics import stats
from workers.analytics.ingest.series import Series
from workers.analytics.parts import Part, finding, kpi, percent
from workers.analytics.rounding import frac, iso, num, pct, pval

FloatArray = NDArray[np.float64]
DAY = 86400.0
ALPHA = 0.01
SUP_F_CRITICAL = 12.16  # Andrews (1993), 1%, one restriction, 15% trimming
TRIM = 0.15
MAX_CHANGEPOINTS = 4
MAX_POINTS_FOR_CHANGEPOINTS = 2000
#: Seasonal periods worth trying first for each sampling interval (in seconds).
KNOWN_PERIODS = {
    3600.0: (24, 168),
    DAY: (7, 365),
    7 * DAY: (52,),
    30.44 * DAY: (12,),
    91.3 * DAY: (4,),
}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass
class Grid:
    """A series on a regular grid (gaps interpolated) or by position when irregular."""

    t: FloatArray
    v: FloatArray
    observed: NDArray[np.bool_]
    step: float
    regular: bool


@dataclass
class SeriesResult:
    """Everything measured on one series; findings are built after multiple-testing control."""

    name: str
    grid: Grid
    n: int
    trend: dict[str, Any] = field(default_factory=dict)
    seasonality: dict[str, Any] | None = None
    changepoints: list[dict[str, Any]] = field(default_factory=list)
    anomaly: dict[str, Any] | None = None
    forecast: list[dict[str, Any]] = field(default_factory=list)


def analyze(series: list[Series]) -> Part:
    """Findings and KPIs for every series; trend p-values are BH-corrected across series."""
    results = [measure(s) for s in series]
    p_raw = np.array([r.trend.get("p", 1.0) for r in results], dtype=np.float64)
    p_adj = stats.fdr(p_raw)
    part = Part()
    for result, p in zip(results, p_adj, strict=True):
        part.findings += series_findings(result, float(p))
        part.kpis += series_kpis(result)
    part.facts["series"] = [series_facts(r) for r in results[:50]]
    return part


def measure(series: Series) -> SeriesResult:
    """Season first (so it cannot pose as a shift), then level shifts, then the trend."""
    grid = regularize(series.t, series.v)
    result = SeriesResult(series.name, grid, int(series.t.size))
    if series.t.size < 3:
        return result
    season = Season(np.zeros_like(grid.v), False)
    if grid.regular:
        result.seasonality, season = seasonality(grid)
    deseasoned = season.remove(grid.v)
    period = result.seasonality["period"] if result.seasonality else 1
    breaks = changepoints(deseasoned, min_size=max(5, period))
    result.changepoints = [_describe_break(grid, k, f, shift) for k, f, shift in breaks]
    at = [k for k, _, _ in breaks]
    result.trend = trend(grid, deseasoned, period, at)
    fitted = _piecewise_fit(deseasoned, at)
    result.anomaly = residual_anomalies(grid, season, fitted, at, max(3, period // 2))
    result.forecast = forecast(grid, deseasoned, season, period, at)
    return result


@dataclass
class Season:
    """The seasonal component: additive, or on the log scale (a cycle proportional to the level)
    when the series is strictly positive."""

    component: FloatArray
    multiplicative: bool

    def remove(self, v: FloatArray) -> FloatArray:
        return v / np.exp(self.component) if self.multiplicative else v - self.component

    def apply(self, v: FloatArray, component: FloatArray | None = None) -> FloatArray:
        comp = self.component if component is None else component
        return v * np.exp(comp) if self.multiplicative else v + comp


# ----------------------------------------------------------------------------- grid
def regularize(t: FloatArray, v: FloatArray) -> Grid:
    """Exact grids with gaps are filled by interpolation; near-regular ones go by position."""
    n = t.size
    observed = np.ones(n, dtype=bool)
    if n < 3:
        return Grid(t, v, observed, DAY, False)
    deltas = np.diff(t)
    step = float(np.median(deltas))
    if step <= 0:
        return Grid(t, v, observed, DAY, False)
    ratio = deltas / step
    exact = np.abs(ratio - np.round(ratio)) < 0.01
    size = round((t[-1] - t[0]) / step) + 1
    if exact.mean() >= 0.95 and size <= 3 * n and size <= 500_000:
        index = np.round((t - t[0]) / step).astype(np.int64)
        values = np.full(size, np.nan)
        values[index] = v
        mask = np.zeros(size, dtype=bool)
        mask[index] = True
        filled = pd.Series(values).interpolate(limit_direction="both").to_numpy()
        return Grid(t[0] + step * np.arange(size), filled, mask, step, True)
    near = np.abs(ratio - 1) < 0.15
    return Grid(t, v, observed, step, bool(near.mean() >= 0.9))


# ----------------------------------------------------------------------------- seasonality
def seasonality(grid: Grid) -> tuple[dict[str, Any] | None, Season]:
    """The strongest significant seasonal period and its component (zeros when there is none)."""
    multiplicative = bool(np.all(grid.v > 0))
    y = np.log(grid.v) if multiplicative else grid.v
    n = y.size
    best: tuple[float, int, float, float, FloatArray] | None = None
    for period in _candidate_periods(grid, y):
        scored = _seasonal_strength(y, period)
        if scored is None:
            continue
        strength, p_value, profile = scored
        adjusted = 1 - (1 - strength) * (n - 1) / max(n - period, 1)
        if p_value < 0.001 and strength >= 0.2 and (best is None or adjusted > best[0] * 1.05):
            best = (adjusted, period, strength, p_value, profile)
    if best is None:
        return None, Season(np.zeros_like(y), False)
    _, period, strength, p_value, profile = best
    season = Season(_local_seasonal(y, period), multiplicative)
    return _season_evidence(
        grid,
        period,
        strength,
        p_value,
        season.apply(np.ones(period), profile) if multiplicative else profile,
        multiplicative,
    ), season


def _local_seasonal(y: FloatArray, period: int, cycles_window: int = 7) -> FloatArray:
    """A seasonal component that may drift slowly: for each phase, the rolling median over
    neighbouring cycles of the detrended series, so a spike or a shift does not bend it."""
    parts = seasonal_decompose(y, period=period, model="additive", extrapolate_trend="freq")
    detrended = y - np.asarray(parts.trend, dtype=np.float64)
    cycles = -(-y.size // period)
    grid = np.full(cycles * period, np.nan)
    grid[: y.size] = detrended
    table = pd.DataFrame(grid.reshape(cycles, period))
    smooth = np.array(table.rolling(cycles_window, center=True, min_periods=1).median())
    smooth -= np.nanmean(smooth, axis=1, keepdims=True)
    return np.asarray(np.nan_to_num(smooth.reshape(-1)[: y.size]), dtype=np.float64)


def _candidate_periods(grid: Grid, y: FloatArray) -> list[int]:
    n = y.size
    limit = n // 3
    known = next((p for s, p in KNOWN_PERIODS.items() if abs(grid.step / s - 1) < 0.1), ())
    found: list[int] = [p for p in known if 2 <= p <= limit]
    if limit >= 4:
        r = acf(np.diff(y), nlags=min(limit, 400), fft=True)
        lags = np.arange(2, r.size - 1)
        peaks = lags[
            (r[lags] > r[lags - 1]) & (r[lags] >= r[lags + 1]) & (r[lags] > 2.58 / math.sqrt(n))
        ]
        found += sorted(peaks[np.argsort(-r[peaks], kind="stable")][:4].tolist())
    return sorted(dict.fromkeys(int(p) for p in found))


def _seasonal_strength(y: FloatArray, period: int) -> tuple[float, float, FloatArray] | None:
    """Hyndman's strength of seasonality and the F-test p-value of the phase means."""
    if y.size < 3 * period or period < 2:
        return None
    parts = seasonal_decompose(y, period=period, model="additive", extrapolate_trend="freq")
    resid = np.asarray(parts.resid, dtype=np.float64)
    seasonal = np.asarray(parts.seasonal, dtype=np.float64)
    total = np.var(resid + seasonal)
    if not total > 0:
        return None
    strength = max(0.0, 1 - float(np.var(resid)) / float(total))
    detrended = resid + seasonal
    phases = np.arange(y.size) % period
    groups = [detrended[phases == ph] for ph in range(period)]
    p_value = float(st.f_oneway(*groups).pvalue) if all(g.size > 1 for g in groups) else 1.0
    return strength, p_value if math.isfinite(p_value) else 1.0, seasonal[:period].copy()


def _season_evidence(
    grid: Grid,
    period: int,
    strength: float,
    p_value: float,
    profile: FloatArray,
    multiplicative: bool,
) -> dict[str, Any]:
    """``profile`` is additive (units) or a factor around 1 (multiplicative)."""
    peak, trough = int(np.argmax(profile)), int(np.argmin(profile))
    level = float(np.mean(grid.v))
    spread = float(profile.max() - profile.min())
    amplitude = spread * level if multiplicative else spread
    return {
        "period": period,
        "cycle": cycle_name(grid.step, period),
        "strength": frac(strength),
        "p_value": pval(p_value),
        "peak": _phase_label(grid, peak, period),
        "trough": _phase_label(grid, trough, period),
        "amplitude": num(amplitude),
        "amplitude_pct": pct(amplitude / abs(level) * 100) if level else None,
        "model": "multiplicative" if multiplicative else "additive",
    }


def cycle_name(step: float, period: int) -> str | None:
    """``weekly`` for 7 in daily data, ``daily`` for 24 in hourly data, and so on."""
    names = {
        (DAY, 7): "weekly",
        (DAY, 365): "yearly",
        (3600.0, 24): "daily",
        (3600.0, 168): "weekly",
        (7 * DAY, 52): "yearly",
        (30.44 * DAY, 12): "yearly",
        (91.3 * DAY, 4): "yearly",
    }
    return next((v for (s, p), v in names.items() if p == period and abs(step / s - 1) < 0.1), None)


def _phase_label(grid: Grid, phase: int, period: int) -> str:
    stamp = pd.Timestamp(grid.t[phase], unit="s")
    if abs(grid.step - DAY) < 1 and period == 7:
        return WEEKDAYS[stamp.dayofweek]
    if abs(grid.step - 3600) < 1 and period in (24, 168):
        hour = f"{stamp.hour:02d}:00"
        return hour if period == 24 else f"{WEEKDAYS[stamp.dayofweek]} {hour}"
    return f"position {phase} of {period}"


# ----------------------------------------------------------------------------- trend
def trend(grid: Grid, y: FloatArray, period: int, breaks: list[int]) -> dict[str, Any]:
    """OLS slope per day on the deseasonalised points, Newey-West errors, with a level term
    per changepoint so a shift is not read as a steeper trend."""
    keep = np.flatnonzero(grid.observed)
    days = (grid.t[keep] - grid.t[0]) / DAY
    values = y[keep]
    n = values.size
    if n < 4 or np.ptp(days) == 0:
        return {}
    steps = [(keep >= k).astype(np.float64) for k in breaks]
    design = np.column_stack([np.ones(n), days, *steps])
    lags = max(int(4 * (n / 100) ** (2 / 9)), period)
    fit = OLS(values, design).fit(cov_type="HAC", cov_kwds={"maxlags": min(lags, n - 2)})
    params = np.asarray(fit.params, dtype=np.float64)
    slope, p_value = float(params[1]), float(fit.pvalues[1])
    start = float(params[0])
    end = float(params[0] + slope * days[-1] + params[2:].sum())
    sd = float(np.std(fit.resid, ddof=design.shape[1])) if n > design.shape[1] else 0.0
    level_ok = abs(start) > 0.5 * sd and abs(start) > 1e-12
    return {
        "p": p_value if math.isfinite(p_value) else 1.0,
        "slope": slope,
        "start": start,
        "end": end,
        "change_pct": (end - start) / abs(start) * 100 if level_ok else None,
        "trend_change_pct": slope * days[-1] / abs(start) * 100 if level_ok else None,
        "effect_sd": abs(slope * days[-1]) / sd if sd > 0 else (math.inf if slope else 0.0),
        "monthly_growth_pct": _growth(days, grid.v[keep])
        if not breaks
        else (math.pow(1 + slope / start, 30.44) - 1) * 100
        if start > 0 and slope / start > -1
        else None,
        "days": float(days[-1]),
        "shifts": len(breaks),
        "r2": float(fit.rsquared) if math.isfinite(fit.rsquared) else 0.0,
    }


def _growth(days: FloatArray, values: FloatArray) -> float | None:
    if not np.all(values > 0):
        return None
    slope = np.polyfit(days, np.log(values), 1)[0]
    return float((math.exp(slope * 30.44) - 1) * 100)


# ----------------------------------------------------------------------------- changepoints
def changepoints(y: FloatArray, min_size: int = 5) -> list[tuple[int, float, float]]:
    """Level shifts found by binary segmentation with the sup-F test (trend allowed in each
    segment, so a steady trend is not mistaken for a shift). Returns (index, F, shift)."""
    block = max(1, math.ceil(y.size / MAX_POINTS_FOR_CHANGEPOINTS))
    z = _block_means(y, block)
    size = max(2, math.ceil(min_size / block))
    found: list[tuple[int, float, float]] = []
    stack = [(0, z.size)]
    while stack and len(found) < MAX_CHANGEPOINTS:
        lo, hi = stack.pop()
        split = _best_split(z[lo:hi], size)
        if split is None or split[1] < SUP_F_CRITICAL:
            continue
        k, f_stat, shift = split
        found.append((lo + k, f_stat, shift))
        stack += [(lo, lo + k), (lo + k, hi)]
    return sorted((k * block, f, s) for k, f, s in found)


def _block_means(y: FloatArray, block: int) -> FloatArray:
    if block == 1:
        return y
    usable = y.size // block * block
    return np.asarray(y[:usable].reshape(-1, block).mean(axis=1), dtype=np.float64)


def _best_split(seg: FloatArray, min_size: int) -> tuple[int, float, float] | None:
    m = seg.size
    lo, hi = max(math.ceil(TRIM * m), min_size), min(math.floor((1 - TRIM) * m), m - min_size)
    if m < 10 or hi < lo:
        return None
    x = np.arange(m, dtype=np.float64)
    design = np.column_stack([np.ones(m), x])
    inverse = np.linalg.inv(design.T @ design)
    resid = seg - design @ (inverse @ (design.T @ seg))
    ssr0 = float(resid @ resid)
    if ssr0 <= 1e-12 * max(1.0, float(seg @ seg)):
        return None
    k = np.arange(lo, hi + 1)
    s_k = np.cumsum(resid[::-1])[::-1][k]
    q = np.column_stack([m - k, np.cumsum(x[::-1])[::-1][k]])
    d_k = (m - k) - np.einsum("ij,jk,ik->i", q, inverse, q)
    gain = np.where(d_k > 1e-9, s_k**2 / np.maximum(d_k, 1e-9), 0.0)
    f_stat = gain / np.maximum((ssr0 - gain) / (m - 3), 1e-300)
    best = int(np.argmax(f_stat))
    return int(k[best]), float(f_stat[best]), float(s_k[best] / d_k[best])


def _describe_break(grid: Grid, k: int, f_stat: float, shift: float) -> dict[str, Any]:
    return {"index": k, "date": iso(pd.Timestamp(grid.t[k], unit="s")), "f": f_stat, "shift": shift}


def _piecewise_fit(y: FloatArray, breaks: list[int]) -> FloatArray:
    fitted = np.empty_like(y)
    bounds = [0, *breaks, y.size]
    for lo, hi in itertools.pairwise(bounds):
        x = np.arange(hi - lo, dtype=np.float64)
        if hi - lo >= 3:
            fitted[lo:hi] = _robust_line(x, y[lo:hi])
        else:
            fitted[lo:hi] = y[lo:hi].mean()
    return fitted


def _robust_line(x: FloatArray, y: FloatArray) -> FloatArray:
    """Least squares, refitted without the points it leaves far out (a spike must not tilt
    the baseline it is judged against)."""
    line = np.polyval(np.polyfit(x, y, 1), x)
    keep = np.abs(stats.robust_z(y - line)) <= stats.OUTLIER_Z
    if 3 <= keep.sum() < y.size:
        line = np.polyval(np.polyfit(x[keep], y[keep], 1), x)
    return np.asarray(line, dtype=np.float64)


# ----------------------------------------------------------------------------- anomalies
def residual_anomalies(
    grid: Grid, season: Season, fitted: FloatArray, breaks: list[int], guard: int
) -> dict[str, Any] | None:
    """Observed points whose residual has a robust z above 3.5 (at most 5% of points).

    With a multiplicative season the residual is taken on the log scale, where the noise of a
    series whose swings grow with its level has a constant size. Points within ``guard`` steps
    of a level shift are not judged: the shift's exact day is uncertain.
    """
    near = np.zeros(grid.v.size, dtype=bool)
    for k in breaks:
        near[max(0, k - guard) : k + guard] = True
    idx = np.flatnonzero(grid.observed & ~near)
    if idx.size < 8:
        return None
    expected = season.apply(fitted)
    if season.multiplicative and np.all(expected[idx] > 0):
        resid = np.log(grid.v[idx]) - np.log(expected[idx])
    else:
        resid = grid.v[idx] - expected[idx]
    z = stats.robust_z(resid)
    limit = stats.outlier_threshold(idx.size)
    hits = np.flatnonzero(np.abs(z) > limit)
    if hits.size == 0 or hits.size > 0.05 * idx.size:
        return None
    at = idx[hits]
    return {
        "points": [iso(pd.Timestamp(grid.t[i], unit="s")) for i in at[:25]],
        "values": [num(grid.v[i]) for i in at[:25]],
        "expected": [num(expected[i]) for i in at[:25]],
        "count": int(hits.size),
        "max_robust_z": float(np.max(np.abs(z[hits]))),
        "threshold_z": round(limit, 2),
    }


# ----------------------------------------------------------------------------- forecast
def forecast(
    grid: Grid, y: FloatArray, season: Season, period: int, breaks: list[int]
) -> list[dict[str, Any]]:
    """Linear trend of the current regime plus the seasonal profile, with a 95% interval."""
    n = y.size
    if n < 8:
        return []
    start = breaks[-1] if breaks and n - breaks[-1] >= max(10, 2 * period) else 0
    seg = y[start:]
    x = np.arange(seg.size, dtype=np.float64)
    slope, intercept = np.polyfit(x, seg, 1)
    resid = seg - (intercept + slope * x)
    sd = float(np.std(resid, ddof=2)) if seg.size > 2 else 0.0
    horizon = 2 * period if period > 1 else min(30, max(3, n // 10))
    future = seg.size - 1 + np.arange(1, horizon + 1, dtype=np.float64)
    sxx = float(((x - x.mean()) ** 2).sum()) or 1.0
    half = 1.96 * sd * np.sqrt(1 + 1 / seg.size + (future - x.mean()) ** 2 / sxx)
    steps = np.arange(1, horizon + 1)
    component = (
        season.component[-period:][(period - 1 + steps) % period]
        if period > 1
        else np.zeros(horizon)
    )
    base = intercept + slope * future
    centre = season.apply(base, component)
    low, high = season.apply(base - half, component), season.apply(base + half, component)
    times = grid.t[-1] + grid.step * steps
    return [
        {"t": iso(pd.Timestamp(t, unit="s")), "v": num(c), "low": num(lo), "high": num(hi)}
        for t, c, lo, hi in zip(times, centre, low, high, strict=True)
    ]


# ----------------------------------------------------------------------------- output
def series_findings(result: SeriesResult, p_adj: float) -> list[Finding]:
    out = []
    trend_finding = _trend_finding(result, p_adj)
    if trend_finding:
        out.append(trend_finding)
    if result.seasonality:
        out.append(_season_finding(result))
    out += [_break_finding(result, i) for i in range(len(result.changepoints))]
    if result.anomaly:
        out.append(_anomaly_finding(result))
    return out


def _trend_finding(result: SeriesResult, p_adj: float) -> Finding | None:
    tr = result.trend
    change = tr.get("trend_change_pct")
    if not tr or p_adj >= ALPHA or (change is not None and abs(change) < 1):
        return None
    size = abs(change) if change is not None else None
    severity: Severity
    if size is not None:
        severity = "high" if size >= 20 else ("medium" if size >= 8 else "low")
    else:
        severity = "high" if tr["effect_sd"] >= 2 else ("medium" if tr["effect_sd"] >= 1 else "low")
    direction = "up" if tr["slope"] > 0 else "down"
    name = result.name
    detail = f"{name} moved {direction} by {num(tr['slope'])} per day"
    detail += f" ({pct(change)}% over {num(tr['days'])} days)." if change is not None else "."
    if tr["shifts"]:
        detail += f" Including {tr['shifts']} level shift(s), the total change is "
        detail += f"{pct(tr['change_pct'])}%." if tr["change_pct"] is not None else "as listed."
    return finding(
        "trend",
        name,
        f"{name} is trending {direction}",
        severity=severity,
        confidence=stats.confidence(p_adj, result.n),
        detail=detail,
        evidence={
            "direction": direction,
            "change_pct": pct(tr["change_pct"]),
            "trend_change_pct": pct(change),
            "slope_per_day": num(tr["slope"]),
            "monthly_growth_pct": pct(tr["monthly_growth_pct"]),
            "start_level": num(tr["start"]),
            "end_level": num(tr["end"]),
            "days": num(tr["days"]),
            "p_value": pval(p_adj),
            "r_squared": frac(tr["r2"]),
            "points": result.n,
            "level_shifts": tr["shifts"],
        },
    )


def _season_finding(result: SeriesResult) -> Finding:
    ev = dict(result.seasonality or {})
    strength = float(ev["strength"])
    severity: Severity = "medium" if strength >= 0.6 else ("low" if strength >= 0.3 else "info")
    cycle = ev.get("cycle")
    title = (
        f"{result.name} follows a {cycle} cycle"
        if cycle
        else f"{result.name} repeats every {ev['period']} points"
    )
    return finding(
        "seasonality",
        result.name,
        title,
        severity=severity,
        confidence=stats.confidence(float(ev["p_value"]), result.n),
        detail=f"A cycle of {ev['period']} steps explains {percent(strength)} of the variation "
        f"left after the trend; it peaks at {ev['peak']} and is lowest at {ev['trough']}.",
        evidence=ev,
    )


def _break_finding(result: SeriesResult, i: int) -> Finding:
    grid, cps = result.grid, result.changepoints
    cp = cps[i]
    lo = cps[i - 1]["index"] if i else 0
    hi = cps[i + 1]["index"] if i + 1 < len(cps) else grid.v.size
    before = grid.v[lo : cp["index"]][grid.observed[lo : cp["index"]]]
    after = grid.v[cp["index"] : hi][grid.observed[cp["index"] : hi]]
    mean_before, mean_after = float(before.mean()), float(after.mean())
    shift_pct = cp["shift"] / abs(mean_before) * 100 if abs(mean_before) > 1e-12 else None
    size = abs(shift_pct) if shift_pct is not None else 0.0
    severity: Severity = "high" if size >= 20 else ("medium" if size >= 8 else "low")
    excess = (cp["f"] - SUP_F_CRITICAL) / SUP_F_CRITICAL
    return finding(
        "changepoint",
        result.name,
        f"{result.name} shifted level on {cp['date']}",
        severity=severity,
        confidence=min(0.99, 0.8 + 0.19 * min(1.0, excess)),
        detail=f"From {cp['date']} {result.name} averages {num(mean_after)}, against "
        f"{num(mean_before)} before.",
        evidence={
            "date": cp["date"],
            "mean_before": num(mean_before),
            "mean_after": num(mean_after),
            "shift": num(cp["shift"]),
            "shift_pct": pct(shift_pct),
            "f_stat": num(cp["f"]),
            "critical_f": SUP_F_CRITICAL,
            "test": "sup_f",
        },
    )


def _anomaly_finding(result: SeriesResult) -> Finding:
    an = dict(result.anomaly or {})
    top = an.pop("max_robust_z")
    severity: Severity = "high" if top >= 20 else ("medium" if top >= 8 else "low")
    return finding(
        "anomaly",
        result.name,
        f"{an['count']} unusual points in {result.name}",
        severity=severity,
        confidence=0.9 if result.n >= 30 else 0.6,
        detail=f"{an['count']} points of {result.name} deviate strongly from its trend and "
        "seasonal pattern.",
        evidence={**an, "max_robust_z": num(top)},
    )


def series_kpis(result: SeriesResult) -> list[Any]:
    name, grid = result.name, result.grid
    if result.n == 0:
        return []
    values = grid.v[grid.observed]
    out = [
        kpi(f"{name}_last", values[-1], "", f"Latest {name}"),
        kpi(f"{name}_mean", values.mean(), "", f"Mean {name}"),
    ]
    if result.trend.get("change_pct") is not None:
        out.append(
            kpi(
                f"{name}_change_pct",
                pct(result.trend["change_pct"]),
                "%",
                f"Change of {name} over the period (fitted trend)",
                "(trend end - trend start) / |trend start| * 100",
            )
        )
    if result.forecast:
        last = result.forecast[-1]
        label = f"Forecast of {name} for {last['t']}"
        out += [
            kpi(f"{name}_forecast", last["v"], "", label, "linear trend + seasonal profile"),
            kpi(f"{name}_forecast_low", last["low"], "", f"{label}, 95% lower bound"),
            kpi(f"{name}_forecast_high", last["high"], "", f"{label}, 95% upper bound"),
        ]
    return out


def series_facts(result: SeriesResult) -> dict[str, Any]:
    values = result.grid.v[result.grid.observed]
    return {
        "name": result.name,
        "points": result.n,
        "start": iso(pd.Timestamp(result.grid.t[0], unit="s")) if result.n else None,
        "end": iso(pd.Timestamp(result.grid.t[-1], unit="s")) if result.n else None,
        "regular": result.grid.regular,
        "step_days": num(result.grid.step / DAY),
        "min": num(values.min()) if values.size else None,
        "max": num(values.max()) if values.size else None,
        "seasonal_period": (result.seasonality or {}).get("period"),
        "changepoints": [cp["date"] for cp in result.changepoints],
        "forecast": result.forecast,
    }
