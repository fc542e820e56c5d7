"""Process logs (runs with steps, event logs, n8n executions) into one step table.

Every format becomes the same two frames so the process analytics never care where the
data came from: ``steps`` (one row per step execution) and ``cases`` (one row per run).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workers.analytics.errors import Loc, ProblemLog
from workers.analytics.ingest import common

STEP_COLUMNS = ("case", "step", "start", "end", "status", "manual", "cost", "resource", "error")


@dataclass
class ProcessLog:
    """Steps (case, step, start, end, status, manual, cost, resource, error) and cases.

    ``start``/``end`` are float seconds since the epoch; ``case`` indexes ``cases`` whose
    columns are ``case_id``, ``start``, ``end``, ``status`` (NaN start/end when not given).
    """

    source: str
    steps: pd.DataFrame
    cases: pd.DataFrame
    workflows: list[str] = field(default_factory=list)


def _columns(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, list[Any]]:
    return {key: [row.get(key) for row in rows] for key in keys}


def from_runs(runs: list[Any], log: ProblemLog) -> ProcessLog:
    """``{"runs": [{"run_id", "started_at", "finished_at", "status", "steps": [...]}]}``."""
    flat: list[Any] = []
    owners: list[int] = []
    counts: list[int] = []
    for ri, run in enumerate(runs):
        steps = run.get("steps") if isinstance(run, dict) else None
        if not isinstance(run, dict):
            log.add(("data", "runs", ri), "must be an object")
        elif not isinstance(steps, list):
            log.add(("data", "runs", ri, "steps"), "must be a list of steps")
        else:
            flat.extend(steps)
            owners.append(ri)
            counts.append(len(steps))
    owner = np.repeat(np.asarray(owners, dtype=np.int64), counts)
    first = np.repeat(np.cumsum([0, *counts])[:-1], counts).astype(np.int64)
    position = np.arange(len(flat), dtype=np.int64) - first
    for i in [i for i, step in enumerate(flat) if type(step) is not dict][:10]:
        log.add(("data", "runs", int(owner[i]), "steps", int(position[i])), "must be an object")
    rows = [step if type(step) is dict else {} for step in flat]
    good = [run if isinstance(run, dict) else {} for run in runs]
    cases = _run_cases(good, log)
    cols = _columns(
        rows, ("name", "started_at", "finished_at", "status", "manual", "cost", "error")
    )

    def loc(key: str) -> Callable[[int], Loc]:
        return lambda i: ("data", "runs", int(owner[i]), "steps", int(position[i]), key)

    steps = pd.DataFrame(
        {
            "case": owner,
            "step": common.texts(cols["name"], loc("name"), log, "the step name"),
            "start": common.times(cols["started_at"], loc("started_at"), log, required=True),
            "end": common.times(cols["finished_at"], loc("finished_at"), log, required=False),
            "manual": common.flags(cols["manual"]),
            "cost": common.numbers(cols["cost"], loc("cost"), log),
            "resource": None,
            "error": [_error_text(e) for e in cols["error"]] if any(cols["error"]) else None,
        }
    )
    steps["status"] = _step_status(cols["status"], steps["end"].to_numpy(), loc("status"), log)
    return ProcessLog("runs", steps, cases)


def _run_cases(runs: list[dict[str, Any]], log: ProblemLog) -> pd.DataFrame:
    cols = _columns(runs, ("run_id", "started_at", "finished_at", "status"))
    ids = [str(rid) if rid is not None else f"#{i}" for i, rid in enumerate(cols["run_id"])]
    return pd.DataFrame(
        {
            "case_id": ids,
            "start": common.times(
                cols["started_at"], lambda i: ("data", "runs", i, "started_at"), log, required=False
            ),
            "end": common.times(
                cols["finished_at"],
                lambda i: ("data", "runs", i, "finished_at"),
                log,
                required=False,
            ),
            "status": common.statuses(
                cols["status"], lambda i: ("data", "runs", i, "status"), log, default=""
            ),
        }
    )


def _step_status(
    values: list[Any], ends: np.ndarray[Any, Any], loc: Callable[[int], Loc], log: ProblemLog
) -> np.ndarray[Any, Any]:
    """Missing step status: success when it finished, running when it did not."""
    words = common.statuses(values, loc, log, default="")
    running = (words == "") & np.isnan(ends)
    words[running] = "running"
    words[words == ""] = "success"
    return words


def _error_text(error: Any) -> str | None:
    if error is None or error is False:
        return None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("description") or "error")[:200]
    return str(error)[:200]


def from_events(events: list[Any], log: ProblemLog) -> ProcessLog:
    """``{"events": [{"case_id", "activity", "start", "end"?, "resource"?, "cost"?}]}``."""
    rows: list[dict[str, Any]] = []
    index: list[int] = []
    for i, event in enumerate(events):
        if isinstance(event, dict):
            rows.append(event)
            index.append(i)
        else:
            log.add(("data", "events", i), "must be an object")
    keys = ("case_id", "activity", "start", "end", "resource", "cost", "status", "manual", "error")
    cols = _columns(rows, keys)

    def loc(key: str) -> Callable[[int], Loc]:
        return lambda i: ("data", "events", index[i], key)

    case_ids = common.texts(cols["case_id"], loc("case_id"), log, "case_id")
    codes, uniques = pd.factorize(pd.Series(case_ids, dtype=object), sort=True)
    steps = pd.DataFrame(
        {
            "case": codes.astype(np.int64),
            "step": common.texts(cols["activity"], loc("activity"), log, "the activity"),
            "start": common.times(cols["start"], loc("start"), log, required=True),
            "end": common.times(cols["end"], loc("end"), log, required=False),
            "manual": common.flags(cols["manual"]),
            "cost": common.numbers(cols["cost"], loc("cost"), log),
            "resource": [None if r is None else str(r) for r in cols["resource"]],
            "error": [_error_text(e) for e in cols["error"]] if any(cols["error"]) else None,
        }
    )
    steps["status"] = _step_status(cols["status"], steps["end"].to_numpy(), loc("status"), log)
    cases = pd.DataFrame(
        {"case_id": [str(u) for u in uniques], "start": np.nan, "end": np.nan, "status": ""}
    )
    return ProcessLog("events", steps, cases)


def from_n8n(executions: list[Any], log: ProblemLog) -> ProcessLog:
    """n8n REST executions with ``includeData=true``: each node run is a step."""
    case_rows: list[dict[str, Any]] = []
    positions: list[int] = []
    keys = ("case", "step", "start", "ms", "status", "error", "loc")
    rows: dict[str, list[Any]] = {k: [] for k in keys}
    workflows: set[str] = set()
    for ei, execution in enumerate(executions):
        if not isinstance(execution, dict):
            log.add(("data", "n8n_executions", ei), "must be an execution object")
            continue
        case_rows.append(execution)
        positions.append(ei)
        if execution.get("workflowId") is not None:
            workflows.add(str(execution["workflowId"]))
        run_data = _run_data(execution, ei, log)
        for node, tasks in run_data.items():
            _node_tasks(node, tasks, len(case_rows) - 1, ei, rows, log)
    steps = _n8n_steps(rows, log)
    return ProcessLog(
        "n8n_executions", steps, _n8n_cases(case_rows, positions, log), sorted(workflows)
    )


def _run_data(execution: dict[str, Any], ei: int, log: ProblemLog) -> dict[str, Any]:
    data = execution.get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            log.add(("data", "n8n_executions", ei, "data"), "is not JSON")
            return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        log.add(
            ("data", "n8n_executions", ei, "data"),
            "must be an object (fetch with includeData=true)",
        )
        return {}
    result = data.get("resultData") or {}
    run_data = result.get("runData") if isinstance(result, dict) else None
    if run_data is None:
        return {}
    if not isinstance(run_data, dict):
        log.add(
            ("data", "n8n_executions", ei, "data", "resultData", "runData"), "must be an object"
        )
        return {}
    return run_data


def _node_tasks(
    node: str, tasks: Any, case: int, ei: int, rows: dict[str, list[Any]], log: ProblemLog
) -> None:
    base: Loc = ("data", "n8n_executions", ei, "data", "resultData", "runData", node)
    if not isinstance(tasks, list):
        log.add(base, "must be a list of node runs")
        return
    for ti, task in enumerate(tasks):
        if not isinstance(task, dict):
            log.add((*base, ti), "must be an object")
            continue
        start, ms = task.get("startTime"), task.get("executionTime")
        if not common.is_number(start):
            log.add((*base, ti, "startTime"), "is required (milliseconds since the epoch)")
            continue
        if ms is not None and not common.is_number(ms):
            log.add((*base, ti, "executionTime"), "must be a number of milliseconds")
            ms = None
        error = task.get("error")
        status = task.get("executionStatus") or ("error" if error else "success")
        rows["case"].append(case)
        rows["step"].append(node)
        rows["start"].append(float(start))  # type: ignore[arg-type]  # checked by is_number
        rows["ms"].append(np.nan if ms is None else float(ms))
        rows["status"].append(status)
        rows["error"].append(_error_text(error))
        rows["loc"].append((*base, ti, "executionStatus"))


def _n8n_steps(rows: dict[str, list[Any]], log: ProblemLog) -> pd.DataFrame:
    start = np.asarray(rows["start"], dtype=np.float64) / 1000.0
    ms = np.asarray(rows["ms"], dtype=np.float64)
    status = common.statuses(rows["status"], lambda i: rows["loc"][i], log)
    n = len(rows["case"])
    return pd.DataFrame(
        {
            "case": np.asarray(rows["case"], dtype=np.int64),
            "step": pd.Series(rows["step"], dtype=object),
            "start": start,
            "end": start + ms / 1000.0,
            "status": status,
            "manual": np.zeros(n),
            "cost": np.full(n, np.nan),
            "resource": None,
            "error": pd.Series(rows["error"], dtype=object),
        }
    )


def _n8n_cases(executions: list[dict[str, Any]], at: list[int], log: ProblemLog) -> pd.DataFrame:
    cols = _columns(executions, ("id", "startedAt", "stoppedAt", "status", "finished"))
    status = [
        s if s is not None else ("success" if fin else None)
        for s, fin in zip(cols["status"], cols["finished"], strict=True)
    ]
    return pd.DataFrame(
        {
            "case_id": [str(x) if x is not None else f"#{i}" for i, x in enumerate(cols["id"])],
            "start": common.times(
                cols["startedAt"],
                lambda i: ("data", "n8n_executions", at[i], "startedAt"),
                log,
                False,
            ),
            "end": common.times(
                cols["stoppedAt"],
                lambda i: ("data", "n8n_executions", at[i], "stoppedAt"),
                log,
                False,
            ),
            "status": common.statuses(
                status, lambda i: ("data", "n8n_executions", at[i], "status"), log, default=""
            ),
        }
    )
