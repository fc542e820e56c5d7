"""Benchmark of the deterministic analytics, each size in a fresh process for an honest peak RSS.

    python bench/analytics.py            # 10k, 100k and 1M step rows; 100 series x 1,000 points
    python bench/analytics.py --quick    # 10k and 100k only

Each row is compared with a same-run baseline over the same input: a plain pandas pipeline
(frame from the same dicts, parse the timestamps, one groupby) for process data, and a rolling
mean plus a least-squares line per series for time series. Time excludes building the input;
peak RSS includes it, because a worker holds the input in memory too.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("Receive", "Data entry", "Match", "Approval", "Payment")
MEAN_MINUTES = np.array([2.0, 12.0, 15.0, 600.0, 6.0])


def process_data(step_rows: int, seed: int = 1) -> dict[str, Any]:
    """``runs`` with five steps each, built vectorised so the build does not dominate."""
    rng = np.random.default_rng(seed)
    runs = step_rows // len(STEPS)
    begin = np.datetime64("2026-01-01T00:00:00") + (np.arange(runs) * 300).astype("timedelta64[s]")
    minutes = rng.gamma(4, MEAN_MINUTES / 4, size=(runs, len(STEPS)))
    ends = begin[:, None] + np.cumsum(minutes * 60, axis=1).astype("timedelta64[s]")
    starts = np.concatenate([begin[:, None], ends[:, :-1]], axis=1)
    s_txt = np.char.add(np.datetime_as_string(starts, unit="s"), "Z").tolist()
    e_txt = np.char.add(np.datetime_as_string(ends, unit="s"), "Z").tolist()
    failed = (rng.random((runs, len(STEPS))) < 0.05).tolist()
    return {
        "runs": [
            {
                "run_id": f"R{r}",
                "started_at": s_txt[r][0],
                "finished_at": e_txt[r][-1],
                "status": "failed" if any(failed[r]) else "completed",
                "steps": [
                    {
                        "name": STEPS[k],
                        "started_at": s_txt[r][k],
                        "finished_at": e_txt[r][k],
                        "status": "failed" if failed[r][k] else "completed",
                        "manual": k in (1, 4),
                    }
                    for k in range(len(STEPS))
                ],
            }
            for r in range(runs)
        ],
        "costs": {"hourly_rate": 45},
    }


def series_data(count: int, points: int, seed: int = 2) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    dates = np.datetime_as_string(
        np.arange(np.datetime64("2023-01-01"), np.datetime64("2023-01-01") + points)
    ).tolist()
    weekly = np.tile([1.0, 1.0, 1.05, 1.1, 1.2, 0.9, 0.75], points // 7 + 1)[:points]
    out = []
    for i in range(count):
        level = (
            1000
            * (1 + 0.3 * np.arange(points) / points)
            * weekly
            * (1 + rng.normal(0, 0.05, points))
        )
        out.append(
            {
                "name": f"kpi_{i}",
                "points": [
                    {"t": t, "v": round(float(v), 2)} for t, v in zip(dates, level, strict=True)
                ],
            }
        )
    return {"series": out}


def run_analytics(kind: str, data: dict[str, Any]) -> None:
    from workers.analytics import analyze

    analysis_type = "process_analysis" if kind == "process" else "trend_analysis"
    report = analyze(analysis_type, data)
    assert report.analysis.kpis


def run_baseline(kind: str, data: dict[str, Any]) -> None:
    import pandas as pd

    if kind == "process":
        steps = [step for run in data["runs"] for step in run["steps"]]
        frame = pd.DataFrame.from_records(
            steps, columns=["name", "started_at", "finished_at", "status"]
        )
        start = pd.to_datetime(frame["started_at"], utc=True, format="ISO8601")
        end = pd.to_datetime(frame["finished_at"], utc=True, format="ISO8601")
        frame["seconds"] = (end - start).dt.total_seconds()
        frame.groupby("name")["seconds"].agg(["count", "mean", "median", "std"])
        return
    for series in data["series"]:
        frame = pd.DataFrame(series["points"])
        frame["t"] = pd.to_datetime(frame["t"])
        frame["v"].rolling(7, center=True).mean()
        np.polyfit(np.arange(len(frame)), frame["v"].to_numpy(), 1)


def child(kind: str, size: int, mode: str) -> None:
    """Build the input, time one run, print JSON with seconds and peak RSS in MB."""
    sys.path.insert(0, str(ROOT))
    if mode == "analytics":  # import cost is paid once per worker, not per job
        import workers.analytics  # noqa: F401
    else:
        import pandas  # noqa: F401
    data = process_data(size) if kind == "process" else series_data(size // 1000, 1000)
    began = time.perf_counter()
    (run_analytics if mode == "analytics" else run_baseline)(kind, data)
    seconds = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))


def measure(kind: str, size: int, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(size), mode],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 1M-row process size")
    parser.add_argument(
        "--child", nargs=3, metavar=("KIND", "SIZE", "MODE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2])
        return
    sizes = [("process", 10_000), ("process", 100_000)]
    sizes += [] if args.quick else [("process", 1_000_000)]
    sizes += [("series", 100_000)]
    columns = ("analytics s", "peak MB", "baseline s", "peak MB", "time x")
    widths = (12, 9, 12, 9, 8)
    header = f"{'workload':<34}" + "".join(
        f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)
    )
    print(header)
    print("-" * len(header))
    for kind, size in sizes:
        ours = measure(kind, size, "analytics")
        base = measure(kind, size, "baseline")
        label = (
            f"process, {size:,} step rows"
            if kind == "process"
            else "trend, 100 series x 1,000 points"
        )
        ratio = ours["seconds"] / base["seconds"]
        print(
            f"{label:<34}{ours['seconds']:>12.2f}{ours['peak_mb']:>9.0f}"
            f"{base['seconds']:>12.2f}{base['peak_mb']:>9.0f}{ratio:>8.1f}"
        )


if __name__ == "__main__":
    main()
