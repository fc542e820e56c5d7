"""Process analytics: cycle times, per-step statistics, bottlenecks, failure hotspots,
rework loops, variants and automation candidates from one step table.

Everything is vectorised over the step table (1M rows in seconds); statistical tests run on
deterministic quantile samples so their cost does not grow with the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats as st

from bi_engine.domain.result import Finding, Severity
from workers.analytics import stats
from workers.analytics.automation import automation_candidates
from workers.analytics.ingest.common import FAILED, FINISHED
from workers.analytics.ingest.process import ProcessLog
from workers.analytics.parts import Part, finding, kpi, percent
from workers.analytics.rounding import frac, num, pval

FloatArray = NDArray[np.float64]
UNITS = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0}
MAX_STEPS = 200  # distinct steps analysed in detail (messy logs can have thousands)


@dataclass
class Prepared:
    """The sorted step frame with derived times, the case frame and display unit."""

    frame: pd.DataFrame
    cases: pd.DataFrame
    names: NDArray[np.object_]
    unit: str
    span_days: float

    @property
    def scale(self) -> float:
        return UNITS[self.unit]


def analyze(log: ProcessLog, hourly_rate: float | None = None) -> Part:
    """All process KPIs and findings for one log."""
    prep = prepare(log)
    table = step_table(prep)
    part = Part(kpis=process_kpis(prep, table, hourly_rate))
    part.findings += bottlenecks(prep, table)
    part.findings += failure_hotspots(prep, table)
    if log.source != "n8n_executions":  # repeated n8n node runs are loops by design
        part.findings += rework_loops(prep, table)
    part.findings += automation_candidates(prep, table, hourly_rate)
    part.findings += run_alerts(prep)
    part.facts["process"] = process_facts(log, prep, table, part)
    return part


# ----------------------------------------------------------------------------- preparation
def prepare(log: ProcessLog) -> Prepared:
    """Sort steps within each run and derive working, waiting and elapsed time per step."""
    steps = log.steps
    codes, names = pd.factorize(steps["step"], sort=True)
    start = steps["start"].to_numpy(dtype=np.float64)
    end = steps["end"].to_numpy(dtype=np.float64)
    case = steps["case"].to_numpy(dtype=np.int64)
    order = np.lexsort((np.nan_to_num(end, nan=np.inf), codes, start, case))
    frame = steps.iloc[order].reset_index(drop=True)
    frame["code"] = codes[order]
    _derive_times(frame, log.cases)
    cases = _case_table(frame, log.cases)
    unit = time_unit(cases["cycle"].to_numpy())
    lo, hi = np.nanmin(frame["start"]), np.nanmax(frame["end_eff"])
    span = max((hi - lo) / 86400.0, 1.0) if np.isfinite(hi - lo) else 1.0
    return Prepared(frame, cases, np.asarray(names, dtype=object), unit, span)


def _derive_times(frame: pd.DataFrame, cases: pd.DataFrame) -> None:
    case = frame["case"].to_numpy()
    start = frame["start"].to_numpy()
    end = frame["end"].to_numpy()
    first = np.r_[True, case[1:] != case[:-1]]
    last = np.r_[case[1:] != case[:-1], True]
    next_start = np.where(last, start, np.r_[start[1:], np.nan])
    # An open step (no end) lasts until the next one starts; the last open one has no length.
    end_eff = np.where(np.isnan(end), next_start, np.maximum(end, start))
    reach = pd.Series(end_eff).groupby(case).cummax().to_numpy()
    prev = np.r_[np.nan, reach[:-1]]
    prev[first] = cases["start"].to_numpy()[case[first]]
    wait = np.where(np.isnan(prev), 0.0, np.maximum(start - prev, 0.0))
    frame["end_eff"] = end_eff
    frame["work"] = np.where(np.isnan(end), np.nan, np.maximum(end - start, 0.0))
    frame["wait"] = wait
    frame["elapsed"] = wait + (end_eff - start)
    frame["failed"] = frame["status"].isin(FAILED).to_numpy()
    frame["finished"] = frame["status"].isin(FINISHED).to_numpy()
    frame["running"] = (frame["status"] == "running").to_numpy()


def _case_table(frame: pd.DataFrame, given: pd.DataFrame) -> pd.DataFrame:
    grouped = frame.groupby("case", sort=True)
    derived = pd.DataFrame(
        {
            "first": grouped["start"].min(),
            "last": grouped["end_eff"].max(),
            "failed": grouped["failed"].any(),
            "running": grouped["running"].any(),
        }
    ).reindex(range(len(given)))
    cases = given.copy()
    start = cases["start"].fillna(derived["first"])
    end = cases["end"].where(cases["end"].notna(), derived["last"])
    cases["cycle"] = (end - start).clip(lower=0)
    cases["first"] = start
    status = np.where(derived["failed"].fillna(False).astype(bool), "error", "success")
    status = np.where(derived["running"].fillna(False).astype(bool), "running", status)
    cases["status"] = cases["status"].where(cases["status"] != "", status)
    return cases


def time_unit(cycles: FloatArray) -> str:
    """The display unit for durations, chosen from the median cycle time."""
    finite = cycles[np.isfinite(cycles)]
    median = float(np.median(finite)) if finite.size else 0.0
    if median < 120:
        return "seconds"
    return "minutes" if median < 7200 else "hours"


# ----------------------------------------------------------------------------- step table
def step_table(prep: Prepared) -> pd.DataFrame:
    """Per-step statistics, indexed by step code, largest share of cycle time first."""
    frame = prep.frame
    grouped = frame.groupby("code", sort=True)
    table = grouped.agg(
        executions=("case", "size"),
        runs=("case", "nunique"),
        failures=("failed", "sum"),
        attempts=("finished", "sum"),
        elapsed_sum=("elapsed", "sum"),
        wait_sum=("wait", "sum"),
        work_mean=("work", "mean"),
        work_median=("work", "median"),
        work_std=("work", "std"),
        work_count=("work", "count"),
        elapsed_median=("elapsed", "median"),
        manual=("manual", "mean"),
        has_resource=("resource", "count"),
        cost_mean=("cost", "mean"),
        cost_sum=("cost", "sum"),
    )
    table["elapsed_p90"] = grouped["elapsed"].quantile(0.9)
    table["name"] = prep.names[table.index.to_numpy()]
    total_cycle = float(np.nansum(prep.cases["cycle"].to_numpy()))
    table["share"] = (table["elapsed_sum"] / total_cycle).clip(upper=1) if total_cycle > 0 else 0.0
    table["cv"] = table["work_std"] / table["work_mean"].replace(0, np.nan)
    table["failure_rate"] = table["failures"] / table["attempts"].replace(0, np.nan)
    table["waiting_share"] = table["wait_sum"] / table["elapsed_sum"].replace(0, np.nan)
    table = table.sort_values(["share", "name"], ascending=[False, True], kind="mergesort")
    return table.head(MAX_STEPS)


# ----------------------------------------------------------------------------- KPIs
def process_kpis(prep: Prepared, table: pd.DataFrame, hourly_rate: float | None) -> list[Any]:
    cases, unit, scale = prep.cases, prep.unit, prep.scale
    cycle = cases["cycle"].dropna().to_numpy(dtype=np.float64) / scale
    finished = cases["status"].isin(FINISHED)
    success = int((cases["status"] == "success").sum())
    n_fin = int(finished.sum())
    out = [
        kpi("runs", len(cases), "runs", "Process runs"),
        kpi(
            "success_rate",
            success / n_fin if n_fin else None,
            "ratio",
            "Share of finished runs that succeeded",
            "successful runs / finished runs",
        ),
        kpi("failed_runs", int(cases["status"].isin(FAILED).sum()), "runs", "Failed runs"),
    ]
    if cycle.size:
        for name, q in (("median", 50), ("p90", 90), ("p95", 95)):
            out.append(
                kpi(
                    f"{name}_cycle_time",
                    np.percentile(cycle, q),
                    unit,
                    f"Cycle time, {'median' if q == 50 else f'{q}th percentile'}",
                    f"percentile {q} of (run end - run start)",
                )
            )
        out.append(kpi("mean_cycle_time", cycle.mean(), unit, "Mean cycle time"))
    out.append(
        kpi(
            "throughput_per_day",
            len(cases) / prep.span_days,
            "runs/day",
            "Runs per day",
            "runs / days covered by the log",
        )
    )
    out += _cost_kpis(prep, hourly_rate)
    out.append(kpi("steps", len(prep.names), "steps", "Distinct process steps"))
    out.append(
        kpi(
            "mean_steps_per_run",
            len(prep.frame) / max(len(cases), 1),
            "steps",
            "Step executions per run",
        )
    )
    return out


def _cost_kpis(prep: Prepared, hourly_rate: float | None) -> list[Any]:
    frame, runs = prep.frame, max(len(prep.cases), 1)
    if frame["cost"].notna().any():
        total = float(frame["cost"].sum())
        return [
            kpi(
                "cost_per_run", total / runs, "currency", "Cost per run", "sum of step costs / runs"
            )
        ]
    manual = frame["manual"].fillna(0).to_numpy() > 0.5
    if hourly_rate is None or not manual.any():
        return []
    hours = float(np.nansum(frame["work"].to_numpy()[manual])) / 3600.0
    return [
        kpi("manual_hours_per_run", hours / runs, "hours", "Manual working hours per run"),
        kpi(
            "cost_per_run",
            hours / runs * hourly_rate,
            "currency",
            "Labour cost per run",
            "manual working hours per run * hourly_rate",
        ),
    ]


# ----------------------------------------------------------------------------- bottlenecks
def bottlenecks(prep: Prepared, table: pd.DataFrame) -> list[Finding]:
    """Steps that take far more of the cycle time than a typical step, tested for support.

    A step qualifies when its share is at least 20% and twice the median share of the other
    steps, and its durations are significantly longer (one-sided Mann-Whitney, Bonferroni).
    """
    if len(table) < 2:
        return []
    shares = table["share"].to_numpy(dtype=np.float64)
    pooled = stats.quantile_sample(prep.frame["elapsed"].to_numpy(dtype=np.float64))
    candidates = []
    for position, (code, row) in enumerate(table.iterrows()):
        typical = float(np.median(np.delete(shares, position)))
        ratio = row["share"] / typical if typical > 0 else np.inf
        if row["share"] >= 0.2 and ratio >= 2 and row["runs"] >= 5:
            candidates.append((code, row, ratio))
    out = []
    for code, row, ratio in candidates[:3]:
        sample = prep.frame["elapsed"].to_numpy()[prep.frame["code"].to_numpy() == code]
        p = min(1.0, stats.greater_p(stats.quantile_sample(sample), pooled) * len(table))
        if p < 0.01:
            out.append(_bottleneck(prep, row, ratio, p))
    return out


def _bottleneck(prep: Prepared, row: pd.Series, ratio: float, p: float) -> Finding:
    share = float(row["share"])
    severity: Severity = "low"
    if share >= 0.6 and ratio >= 4:
        severity = "critical"
    elif share >= 0.35 and ratio >= 3:
        severity = "high"
    elif share >= 0.25:
        severity = "medium"
    waiting = row["waiting_share"]
    scale, unit = prep.scale, prep.unit
    queue = bool(np.isfinite(waiting) and waiting >= 0.5)
    detail = (
        f"{row['name']} accounts for {percent(share)} of the total cycle time across "
        f"{int(row['runs'])} runs"
        + (f"; {percent(waiting)} of it is waiting before the step starts." if queue else ".")
    )
    return finding(
        "bottleneck",
        str(row["name"]),
        f"{row['name']} is the main bottleneck"
        if severity in ("high", "critical")
        else f"{row['name']} slows the process",
        severity=severity,
        confidence=stats.confidence(p, int(row["runs"])),
        detail=detail,
        evidence={
            "share_of_cycle_time": frac(share),
            "runs": int(row["runs"]),
            "executions": int(row["executions"]),
            "median_duration": num(row["elapsed_median"] / scale),
            "p90_duration": num(row["elapsed_p90"] / scale),
            "mean_working": num(row["work_mean"] / scale),
            "mean_waiting": num(row["wait_sum"] / row["executions"] / scale),
            "waiting_share": frac(waiting),
            "variability_cv": num(row["cv"]),
            "ratio_to_typical_step": num(ratio if np.isfinite(ratio) else None),
            "unit": unit,
            "p_value": pval(p),
        },
    )


# ----------------------------------------------------------------------------- failures
def failure_hotspots(prep: Prepared, table: pd.DataFrame) -> list[Finding]:
    """Steps failing significantly more often than the rest (Fisher exact, BH-corrected)."""
    attempts = table["attempts"].to_numpy(dtype=np.int64)
    failures = table["failures"].to_numpy(dtype=np.int64)
    total_n, total_k = int(attempts.sum()), int(failures.sum())
    if total_k == 0:
        return []
    p_raw = np.array(
        [
            _fisher_greater(int(k), int(n), total_k - int(k), total_n - int(n))
            if len(table) > 1
            else st.binomtest(int(k), int(n), 0.01, alternative="greater").pvalue
            if n
            else 1.0
            for k, n in zip(failures, attempts, strict=True)
        ],
        dtype=np.float64,
    )
    p_adj = stats.fdr(p_raw)
    low, high = stats.wilson(failures, attempts)
    errors = _top_errors(prep)
    out = []
    for i, (_, row) in enumerate(table.iterrows()):
        rate = failures[i] / attempts[i] if attempts[i] else 0.0
        if failures[i] >= 3 and rate >= 0.02 and p_adj[i] < 0.05:
            evidence = {
                "failure_rate": frac(rate),
                "runs": int(row["runs"]),
                "attempts": int(attempts[i]),
                "failures": int(failures[i]),
                "wilson_low_rate": frac(low[i]),
                "wilson_high_rate": frac(high[i]),
                "other_steps_failure_rate": frac(
                    (total_k - failures[i]) / max(total_n - attempts[i], 1)
                ),
                "p_value": pval(p_adj[i]),
                "top_errors": errors.get(int(row.name), []),
            }
            out.append(_hotspot(str(row["name"]), rate, int(attempts[i]), p_adj[i], evidence))
    return out


def _fisher_greater(k: int, n: int, k_rest: int, n_rest: int) -> float:
    if n == 0:
        return 1.0
    table = [[k, n - k], [k_rest, max(n_rest - k_rest, 0)]]
    return float(st.fisher_exact(table, alternative="greater").pvalue)


def _hotspot(name: str, rate: float, n: int, p: float, evidence: dict[str, Any]) -> Finding:
    severity: Severity = "info"
    if rate >= 0.5 and n >= 20:
        severity = "critical"
    elif rate >= 0.2:
        severity = "high"
    elif rate >= 0.1:
        severity = "medium"
    elif rate >= 0.03:
        severity = "low"
    return finding(
        "failure_hotspot",
        name,
        f"{name} fails in {percent(rate)} of attempts",
        severity=severity,
        confidence=stats.confidence(p, n),
        detail=f"{name} failed {evidence['failures']} of {n} times, against "
        f"{percent(evidence['other_steps_failure_rate'])} for the other steps.",
        evidence=evidence,
    )


def _top_errors(prep: Prepared) -> dict[int, list[str]]:
    frame = prep.frame
    if "error" not in frame or frame["error"].isna().all():
        return {}
    errs = frame.loc[frame["error"].notna(), ["code", "error"]]
    counts = errs.groupby(["code", "error"]).size().reset_index(name="n")
    counts = counts.sort_values(["code", "n", "error"], ascending=[True, False, True])
    return {int(c): g["error"].head(3).tolist() for c, g in counts.groupby("code")}


# ----------------------------------------------------------------------------- rework
def rework_loops(prep: Prepared, table: pd.DataFrame) -> list[Finding]:
    """Steps repeated within the same run (rework), when it happens in a material share."""
    frame = prep.frame
    per_case = frame.groupby(["code", "case"], sort=False).size()
    repeated = (per_case > 1).groupby(level=0).sum()
    extra = (per_case - 1).groupby(level=0).sum()
    runs = per_case.groupby(level=0).size()
    out = []
    for code, row in table.iterrows():
        k, n = int(repeated.get(code, 0)), int(runs.get(code, 0))
        if k < 3 or n == 0 or k / n < 0.05:
            continue
        low, _ = stats.wilson(np.array([k]), np.array([n]))
        rate = k / n
        severity: Severity = "high" if rate >= 0.25 else ("medium" if rate >= 0.1 else "low")
        out.append(
            finding(
                "kpi_alert",
                str(row["name"]),
                f"Rework loop at {row['name']}",
                severity=severity,
                confidence=min(0.95, 0.5 + 0.45 * min(1.0, n / 50)),
                detail=f"{row['name']} is repeated within the same run in {percent(rate)} of the "
                f"{n} runs that reach it ({int(extra.get(code, 0))} extra executions).",
                evidence={
                    "pattern": "rework",
                    "rework_rate": frac(rate),
                    "runs": n,
                    "repeated_runs": k,
                    "extra_executions": int(extra.get(code, 0)),
                    "wilson_low_rate": frac(low[0]),
                },
            )
        )
    return out


# ----------------------------------------------------------------------------- run level
def run_alerts(prep: Prepared) -> list[Finding]:
    """A KPI alert when the run success rate is credibly below 90%."""
    cases = prep.cases
    finished = cases["status"].isin(FINISHED)
    n = int(finished.sum())
    k = int((cases["status"] == "success").sum())
    if n < 10:
        return []
    low, high = stats.wilson(np.array([k]), np.array([n]))
    rate = k / n
    if high[0] >= 0.9:
        return []
    severity: Severity = "critical" if rate < 0.5 else ("high" if rate < 0.75 else "medium")
    return [
        finding(
            "kpi_alert",
            "success_rate",
            f"Only {percent(rate)} of runs succeed",
            severity=severity,
            confidence=0.95,
            detail=f"{n - k} of {n} finished runs failed.",
            evidence={
                "success_rate": frac(rate),
                "runs": n,
                "failed_runs": n - k,
                "wilson_low_rate": frac(low[0]),
                "wilson_high_rate": frac(high[0]),
            },
        )
    ]


# ----------------------------------------------------------------------------- variants
def variants(prep: Prepared, top: int = 5) -> tuple[int, list[dict[str, Any]]]:
    """Number of distinct paths and the most common ones (polynomial hash of step codes)."""
    frame = prep.frame
    if frame.empty:
        return 0, []
    case = frame["case"].to_numpy()
    codes = frame["code"].to_numpy().astype(np.uint64) + np.uint64(1)
    bounds = np.flatnonzero(np.r_[True, case[1:] != case[:-1]])
    pos = np.arange(len(frame)) - np.repeat(bounds, np.diff(np.r_[bounds, len(frame)]))
    powers = np.cumprod(np.full(int(pos.max()) + 1, 1_000_003, dtype=np.uint64), dtype=np.uint64)
    hashes = np.add.reduceat(codes * powers[pos], bounds, dtype=np.uint64)
    uniq, first, counts = np.unique(hashes, return_index=True, return_counts=True)
    cutoff = np.sort(counts)[::-1][min(top, counts.size) - 1]
    chosen = [
        (int(c), _path(prep, bounds, int(f)))
        for c, f in zip(counts, first, strict=True)
        if c >= cutoff
    ]
    chosen.sort(key=lambda item: (-item[0], item[1]))
    total = len(bounds)
    return int(uniq.size), [
        {"path": path, "runs": count, "share": frac(count / total)} for count, path in chosen[:top]
    ]


def _path(prep: Prepared, bounds: NDArray[np.int64], index: int) -> list[str]:
    stop = bounds[index + 1] if index + 1 < bounds.size else len(prep.frame)
    codes = prep.frame["code"].to_numpy()[bounds[index] : stop]
    names = [str(prep.names[c]) for c in codes[:30]]
    return [*names, "..."] if len(codes) > 30 else names


# ----------------------------------------------------------------------------- facts
def process_facts(
    log: ProcessLog, prep: Prepared, table: pd.DataFrame, part: Part
) -> dict[str, Any]:
    count, common_paths = variants(prep)
    total = max(len(prep.cases), 1)
    part.kpis.append(kpi("variants", count, "paths", "Distinct process paths"))
    if common_paths:
        part.kpis.append(
            kpi(
                "top_variant_share",
                common_paths[0]["share"],
                "ratio",
                "Share of runs following the most common path",
            )
        )
    scale = prep.scale
    steps = [
        {
            "step": str(row["name"]),
            "share_of_cycle_time": frac(row["share"]),
            "runs": int(row["runs"]),
            "executions": int(row["executions"]),
            "median_duration": num(row["elapsed_median"] / scale),
            "mean_working": num(row["work_mean"] / scale),
            "mean_waiting": num(row["wait_sum"] / row["executions"] / scale),
            "variability_cv": num(row["cv"]),
            "failure_rate": frac(row["failure_rate"]),
            "manual_share": frac(row["manual"]),
        }
        for _, row in table.head(15).iterrows()
    ]
    return {
        "source": log.source,
        "runs": total,
        "step_executions": len(prep.frame),
        "unit": prep.unit,
        "days_covered": num(prep.span_days),
        "workflows": log.workflows,
        "steps": steps,
        "variants": common_paths,
    }
