"""Deterministic datasets with planted signals, for the tests and the bundled samples.

Each generator takes a seed and returns the ``data`` object of a submission, so a test can
plant a bottleneck, a failing step, a trend, a level shift or a correlation and check that
the analytics find exactly that, with the right subject.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- processes
#: (name, median minutes, spread (lognormal sigma), manual) of the invoice approval process.
INVOICE_STEPS: tuple[tuple[str, float, float, bool], ...] = (
    ("Receive invoice", 2, 0.2, False),
    ("Data entry", 12, 0.2, True),
    ("Three-way match", 15, 0.3, True),
    ("Manager approval", 1080, 0.8, True),
    ("Schedule payment", 6, 0.15, True),
    ("Archive", 1, 0.2, False),
)


def process_runs(
    runs: int = 200,
    seed: int = 7,
    steps: tuple[tuple[str, float, float, bool], ...] = INVOICE_STEPS,
    failing: str | None = "Three-way match",
    fail_rate: float = 0.3,
    rework: str | None = "Data entry",
    rework_rate: float = 0.12,
    hourly_rate: float | None = 45,
) -> dict[str, Any]:
    """``{"runs": [...]}``: the failing step stops its run; rework repeats a step in place."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(runs):
        begin = START + timedelta(hours=float(i * 10.8 + rng.uniform(0, 2)))
        out.append(
            _run(rng, f"INV-{1000 + i}", begin, steps, failing, fail_rate, rework, rework_rate)
        )
    data: dict[str, Any] = {"runs": out}
    if hourly_rate is not None:
        data["costs"] = {"hourly_rate": hourly_rate}
    return data


def _run(
    rng: np.random.Generator,
    run_id: str,
    begin: datetime,
    steps: tuple[tuple[str, float, float, bool], ...],
    failing: str | None,
    fail_rate: float,
    rework: str | None,
    rework_rate: float,
) -> dict[str, Any]:
    clock, items, status = begin, [], "success"
    for name, median, sigma, manual in steps:
        repeats = 2 if name == rework and rng.random() < rework_rate else 1
        for _ in range(repeats):
            clock += timedelta(minutes=float(rng.exponential(3)))
            minutes = float(median * np.exp(rng.normal(0, sigma)))
            end = clock + timedelta(minutes=minutes)
            failed = name == failing and rng.random() < fail_rate
            items.append(
                {
                    "name": name,
                    "started_at": _iso(clock),
                    "finished_at": _iso(end),
                    "status": "failed" if failed else "completed",
                    "manual": manual,
                }
            )
            clock = end
            if failed:
                status = "failed"
                break
        if status == "failed":
            break
    return {
        "run_id": run_id,
        "started_at": _iso(begin),
        "finished_at": _iso(clock),
        "status": status,
        "steps": items,
    }


def noise_runs(runs: int = 200, seed: int = 11, steps: int = 4) -> dict[str, Any]:
    """A process whose steps all take the same time distribution: no bottleneck to find."""
    same = tuple((f"Step {chr(65 + k)}", 30.0, 0.4, False) for k in range(steps))
    return process_runs(runs, seed, same, failing=None, rework=None, hourly_rate=None)


def events_log(runs: int = 150, seed: int = 5) -> dict[str, Any]:
    """The invoice process as an event log (``events`` with case_id/activity/start/end)."""
    data = process_runs(runs, seed)
    events = [
        {
            "case_id": run["run_id"],
            "activity": step["name"],
            "start": step["started_at"],
            "end": step["finished_at"],
            "resource": "clerk" if step["manual"] else "system",
            "status": step["status"],
        }
        for run in data["runs"]
        for step in run["steps"]
    ]
    return {"events": events, "costs": data["costs"]}


# ----------------------------------------------------------------------------- n8n
N8N_NODES: tuple[tuple[str, str, float], ...] = (
    ("Schedule Trigger", "n8n-nodes-base.scheduleTrigger", 2),
    ("Fetch ERP invoices", "n8n-nodes-base.httpRequest", 180),
    ("Transform records", "n8n-nodes-base.code", 25),
    ("Upsert to CRM", "n8n-nodes-base.httpRequest", 220),
    ("Notify Slack", "n8n-nodes-base.slack", 140),
)


def n8n_executions(
    executions: int = 60,
    seed: int = 3,
    slow: str = "Fetch ERP invoices",
    slow_ms: float = 9000,
    failing: str | None = "Upsert to CRM",
    fail_rate: float = 0.1,
) -> dict[str, Any]:
    """Executions as n8n's REST API returns them with ``includeData=true``."""
    rng = np.random.default_rng(seed)
    workflow = {
        "id": "Yx3kP9qL2mN8vB4c",
        "name": "Invoice sync ERP to CRM",
        "active": True,
        "nodes": [
            {
                "id": f"node-{i}",
                "name": n,
                "type": t,
                "typeVersion": 1,
                "position": [240 * i, 300],
                "parameters": {},
            }
            for i, (n, t, _) in enumerate(N8N_NODES)
        ],
        "connections": {
            a[0]: {"main": [[{"node": b[0], "type": "main", "index": 0}]]}
            for a, b in itertools.pairwise(N8N_NODES)
        },
    }
    out = []
    for i in range(executions):
        begin = START + timedelta(minutes=15 * i, seconds=float(rng.uniform(0, 2)))
        out.append(_execution(rng, 4100 + i, begin, workflow, slow, slow_ms, failing, fail_rate))
    return {"n8n_executions": out}


def _execution(
    rng: np.random.Generator,
    ident: int,
    begin: datetime,
    workflow: dict[str, Any],
    slow: str,
    slow_ms: float,
    failing: str | None,
    fail_rate: float,
) -> dict[str, Any]:
    clock = begin.timestamp() * 1000
    run_data: dict[str, Any] = {}
    status, previous, error = "success", None, None
    for index, (name, _, median) in enumerate(N8N_NODES):
        ms = int((slow_ms if name == slow else median) * np.exp(rng.normal(0, 0.25)))
        failed = name == failing and rng.random() < fail_rate
        task: dict[str, Any] = {
            "hints": [],
            "startTime": int(clock),
            "executionIndex": index,
            "source": [{"previousNode": previous}] if previous else [],
            "executionTime": ms,
            "executionStatus": "error" if failed else "success",
            "data": {
                "main": [[{"json": {"count": int(rng.integers(5, 40))}, "pairedItem": {"item": 0}}]]
            }
            if not failed
            else {},
        }
        if failed:
            error = {
                "message": "Request failed with status code 429",
                "name": "NodeApiError",
                "description": "Too Many Requests",
                "httpCode": "429",
                "node": {"name": name},
                "timestamp": int(clock + ms),
            }
            task["error"] = error
        run_data[name] = [task]
        clock += ms + float(rng.uniform(2, 8))
        previous = name
        if failed:
            status = "error"
            break
    result: dict[str, Any] = {"runData": run_data, "lastNodeExecuted": previous}
    if error:
        result["error"] = error
    stopped = datetime.fromtimestamp(clock / 1000, tz=UTC)
    return {
        "id": str(ident),
        "finished": status == "success",
        "mode": "trigger",
        "retryOf": None,
        "retrySuccessId": None,
        "status": status,
        "createdAt": _ms_iso(begin),
        "startedAt": _ms_iso(begin),
        "stoppedAt": _ms_iso(stopped),
        "deletedAt": None,
        "workflowId": workflow["id"],
        "waitTill": None,
        "customData": {},
        "data": {
            "startData": {},
            "resultData": result,
            "executionData": {
                "contextData": {},
                "nodeExecutionStack": [],
                "metadata": {},
                "waitingExecution": {},
                "waitingExecutionSource": {},
            },
        },
        "workflowData": workflow,
    }


def _ms_iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


# ----------------------------------------------------------------------------- series
WEEKLY = (0.92, 0.97, 1.0, 1.02, 1.08, 1.22, 0.79)  # Monday .. Sunday


def daily_series(
    days: int = 182,
    seed: int = 21,
    name: str = "revenue",
    level: float = 10_000,
    growth: float = 0.15,
    weekly: bool = True,
    shift_on: str | None = "2026-04-15",
    shift: float = 0.12,
    noise: float = 0.03,
    start: str = "2026-01-01",
) -> dict[str, Any]:
    """Daily values: linear growth over the period, a weekly cycle and a level shift."""
    rng = np.random.default_rng(seed)
    dates = np.arange(np.datetime64(start), np.datetime64(start) + days)
    trend = level * (1 + growth * np.arange(days) / max(days - 1, 1))
    factor = np.array([WEEKLY[(d.astype(object).weekday())] for d in dates]) if weekly else 1.0
    jump = (1 + shift * (dates >= np.datetime64(shift_on))) if shift_on else 1.0
    values = trend * factor * jump * (1 + rng.normal(0, noise, days))
    points = [{"t": str(d), "v": round(float(v), 2)} for d, v in zip(dates, values, strict=True)]
    return {"series": [{"name": name, "points": points}]}


def noise_series(days: int = 180, seed: int = 1, name: str = "noise") -> dict[str, Any]:
    """White noise around a constant level: no trend, season or shift to find."""
    rng = np.random.default_rng(seed)
    dates = np.arange(np.datetime64("2026-01-01"), np.datetime64("2026-01-01") + days)
    return {
        "series": [
            {
                "name": name,
                "points": [
                    {"t": str(d), "v": round(float(v), 3)}
                    for d, v in zip(dates, 100 + rng.normal(0, 10, days), strict=True)
                ],
            }
        ]
    }


# ----------------------------------------------------------------------------- records
def customer_records(rows: int = 300, seed: int = 42) -> dict[str, Any]:
    """Customers: marketing spend drives revenue, Enterprise buys more, a few outliers and
    gaps, and a field that mixes numbers with text."""
    rng = np.random.default_rng(seed)
    segments = rng.choice(["Enterprise", "SMB", "Consumer"], size=rows, p=[0.2, 0.5, 0.3])
    lift = np.select([segments == "Enterprise", segments == "SMB"], [3.0, 1.4], 1.0)
    spend = np.round(rng.gamma(4, 250, rows), 2)
    revenue = np.round((2.5 * spend + rng.normal(0, 350, rows) + 800) * lift, 2)
    outliers = rng.choice(rows, 4, replace=False)
    revenue[outliers] *= 100  # amounts keyed in cents: a classic entry error
    records = []
    for i in range(rows):
        record: dict[str, Any] = {
            "customer_id": 10_001 + i,
            "segment": str(segments[i]),
            "region": str(rng.choice(["North", "Centre", "South"])),
            "marketing_spend": float(spend[i]),
            "revenue": float(revenue[i]),
            "orders": int(rng.poisson(6 * lift[i])),
            "satisfaction": int(rng.integers(5, 11)),
            "signup_date": str(np.datetime64("2024-01-01") + int(rng.integers(0, 700))),
        }
        if rng.random() < 0.08:
            record["satisfaction"] = None
        if rng.random() < 0.03:
            record["region"] = None
        records.append(record)
    for i in rng.choice(rows, 3, replace=False):
        records[int(i)]["orders"] = "unknown"
    return {"records": records}


def correlated_records(rows: int = 200, seed: int = 8, r: float = 0.9) -> dict[str, Any]:
    """Two strongly correlated columns (``ad_spend``, ``leads``) and an unrelated one."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, rows)
    y = r * x + np.sqrt(1 - r**2) * rng.normal(0, 1, rows)
    z = rng.normal(0, 1, rows)
    return {
        "records": [
            {
                "ad_spend": round(1000 + 200 * a, 2),
                "leads": round(50 + 10 * b, 2),
                "temperature": round(20 + 5 * c, 2),
            }
            for a, b, c in zip(x, y, z, strict=True)
        ]
    }


# ----------------------------------------------------------------------------- samples
def samples() -> dict[str, dict[str, Any]]:
    """The four bundled sample submissions, keyed by file name."""
    return {
        "process_log.json": {
            "type": "process_analysis",
            "data": process_runs(),
            "context": "Invoice approval: monthly review of cycle times, failures and manual work",
            "metrics_focus": ["cycle_time"],
        },
        "n8n_executions.json": {
            "type": "optimization_review",
            "data": n8n_executions(),
            "context": "n8n workflow 'Invoice sync ERP to CRM': why are runs slow?",
        },
        "sales_series.json": {
            "type": "trend_analysis",
            "data": {
                **daily_series(),
                "metrics": {"sales": 1_950_000, "costs": 1_560_000, "previous_sales": 1_700_000},
            },
            "context": "Daily revenue, first half of 2026",
        },
        "customer_dataset.json": {
            "type": "data_interpretation",
            "data": customer_records(),
            "context": "Customer base: what drives revenue, and how clean is the data?",
        },
    }


def write_samples(directory: Path) -> list[Path]:
    """Write the samples as compact JSON (run once; the files are committed)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, body in samples().items():
        path = directory / name
        path.write_text(json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n")
        written.append(path)
    return written
