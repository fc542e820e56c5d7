"""Every input format of CONTRACT section 7 parses; every bad shape says where it is wrong."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from workers.analytics import InvalidData, analyze, ingest, synthetic

pytestmark = pytest.mark.unit


def _locs(exc: pytest.ExceptionInfo[InvalidData]) -> list[tuple[Any, ...]]:
    return [p.loc for p in exc.value.problems]


def test_runs_statuses_and_synonyms_are_normalised() -> None:
    data = synthetic.process_runs(runs=5, seed=1)
    data["runs"][0]["status"] = "succeeded"
    data["runs"][1]["status"] = "crashed"
    data["runs"][2]["steps"][0]["status"] = "ERROR"
    dataset = ingest.load("process_analysis", data)
    assert dataset.process is not None
    assert dataset.process.cases["status"].tolist()[:2] == ["success", "crashed"]
    assert (
        dataset.process.steps["status"].iloc[
            len(data["runs"][0]["steps"]) + len(data["runs"][1]["steps"])
        ]
        == "error"
    )
    assert dataset.hourly_rate == 45


def test_unknown_status_word_is_located() -> None:
    data = synthetic.process_runs(runs=3, seed=1)
    data["runs"][2]["steps"][1]["status"] = "exploded"
    with pytest.raises(InvalidData) as exc:
        ingest.load("process_analysis", data)
    assert ("data", "runs", 2, "steps", 1, "status") in _locs(exc)


def test_bad_timestamp_is_located_exactly() -> None:
    data = synthetic.process_runs(runs=5, seed=1)
    data["runs"][3]["steps"][0]["started_at"] = "yesterday-ish"
    with pytest.raises(InvalidData) as exc:
        analyze("process_analysis", data)
    assert _locs(exc) == [("data", "runs", 3, "steps", 0, "started_at")]
    assert exc.value.code == "invalid_data"
    assert exc.value.details()[0]["loc"] == ["data", "runs", 3, "steps", 0, "started_at"]


def test_missing_step_name_and_non_list_steps() -> None:
    data = synthetic.process_runs(runs=3, seed=1)
    del data["runs"][0]["steps"][2]["name"]
    data["runs"][1]["steps"] = "nope"
    with pytest.raises(InvalidData) as exc:
        ingest.load("process_analysis", data)
    assert ("data", "runs", 0, "steps", 2, "name") in _locs(exc)
    assert ("data", "runs", 1, "steps") in _locs(exc)


@pytest.mark.parametrize(
    ("analysis_type", "data", "loc"),
    [
        ("process_analysis", {"runs": []}, ("data", "runs")),
        ("process_analysis", {"records": [{"a": 1}]}, ("data",)),
        ("data_interpretation", {"records": "x"}, ("data", "records")),
        ("data_interpretation", {"csv": ""}, ("data", "csv")),
        (
            "trend_analysis",
            {"series": [{"name": "s", "points": []}]},
            ("data", "series", 0, "points"),
        ),
        (
            "trend_analysis",
            {"series": [{"name": "s", "points": [{"t": "2026-01-01", "v": "x"}]}]},
            ("data", "series", 0, "points", 0, "v"),
        ),
        ("custom_analysis", {"metrics": {"sales": "lots"}}, ("data", "metrics", "sales")),
        ("custom_analysis", {"metrics": [1, 2]}, ("data", "metrics")),
        (
            "process_analysis",
            {"events": [{"case_id": "a", "activity": "x"}]},
            ("data", "events", 0, "start"),
        ),
        ("custom_analysis", {"question": "why?"}, ("data",)),
        ("process_analysis", {"runs": [{"run_id": 1, "steps": "x"}]}, ("data", "runs", 0, "steps")),
        ("nonsense", {"metrics": {"a": 1}}, ("type",)),
    ],
)
def test_invalid_shapes_raise_with_location(
    analysis_type: str, data: Any, loc: tuple[Any, ...]
) -> None:
    with pytest.raises(InvalidData) as exc:
        analyze(analysis_type, data)
    assert loc in _locs(exc)


def test_costs_must_be_an_object_with_a_number() -> None:
    data = synthetic.process_runs(runs=3, seed=1)
    data["costs"] = {"hourly_rate": "cheap"}
    with pytest.raises(InvalidData) as exc:
        ingest.load("process_analysis", data)
    assert ("data", "costs", "hourly_rate") in _locs(exc)


def test_row_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "MAX_ROWS", 50)
    with pytest.raises(InvalidData) as exc:
        ingest.load("data_interpretation", {"records": [{"a": i} for i in range(51)]})
    assert "limit" in exc.value.problems[0].msg


def test_events_and_runs_give_the_same_steps() -> None:
    events = synthetic.events_log(runs=40, seed=5)
    dataset = ingest.load("process_analysis", events)
    assert dataset.process is not None
    assert dataset.process.source == "events"
    assert len(dataset.process.cases) == 40
    assert set(dataset.process.steps["step"]) >= {"Manager approval", "Data entry"}


def test_n8n_real_shape_and_data_as_json_string() -> None:
    data = synthetic.n8n_executions(executions=5, seed=1)
    as_text = copy.deepcopy(data)
    import json

    as_text["n8n_executions"][0]["data"] = json.dumps(as_text["n8n_executions"][0]["data"])
    for payload in (data, as_text):
        dataset = ingest.load("optimization_review", payload)
        assert dataset.process is not None
        steps = dataset.process.steps
        first = data["n8n_executions"][0]["data"]["resultData"]["runData"]["Fetch ERP invoices"][0]
        row = steps[(steps["case"] == 0) & (steps["step"] == "Fetch ERP invoices")].iloc[0]
        assert row["start"] == pytest.approx(first["startTime"] / 1000)
        assert row["end"] - row["start"] == pytest.approx(first["executionTime"] / 1000)
        assert dataset.process.workflows == ["Yx3kP9qL2mN8vB4c"]


def test_n8n_legacy_execution_without_status_uses_finished() -> None:
    data = synthetic.n8n_executions(executions=3, seed=1)
    for execution in data["n8n_executions"]:
        execution.pop("status")
    dataset = ingest.load("optimization_review", data)
    assert dataset.process is not None
    finished = [e["finished"] for e in data["n8n_executions"]]
    expected = ["success" if f else "" for f in finished]
    assert dataset.process.cases["status"].tolist() == expected


def test_csv_with_semicolons_and_records_with_time_field() -> None:
    dataset = ingest.load("data_interpretation", {"csv": "a;b\n1;x\n2;y\n"})
    assert dataset.table is not None
    assert list(dataset.table.frame.columns) == ["a", "b"]
    records = [
        {"date": "2026-01-01", "sales": 5, "costs": 2},
        {"date": "2026-01-01", "sales": 3},
        {"date": "2026-01-02", "sales": 4, "costs": 1},
    ]
    dataset = ingest.load(
        "trend_analysis",
        {"records": records, "time_field": "date", "value_fields": ["sales", "costs"]},
    )
    sales = next(s for s in dataset.series if s.name == "sales")
    assert sales.v.tolist() == [8.0, 4.0]  # summed per time


def test_custom_analysis_detects_every_format() -> None:
    data = {
        **synthetic.process_runs(runs=20, seed=2),
        "metrics": {"sales": 10, "costs": 4},
        **synthetic.correlated_records(rows=30),
    }
    assert ingest.detect("custom_analysis", data) == ["runs", "records", "metrics"]
    report = analyze("custom_analysis", data)
    assert report.dataset == "runs+records+metrics"
    assert "process" in report.facts
    assert "table" in report.facts
    assert "metrics" in report.facts


def test_epoch_numbers_seconds_and_milliseconds() -> None:
    series = {
        "series": [
            {"name": "a", "points": [{"t": 1767225600, "v": 1}, {"t": 1767312000000, "v": 2}]}
        ]
    }
    dataset = ingest.load("trend_analysis", series)
    assert dataset.series[0].t.tolist() == [1767225600.0, 1767312000.0]
