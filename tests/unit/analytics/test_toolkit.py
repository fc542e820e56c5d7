"""Each tool answers with a compact JSON dict from one shared analysis."""

from __future__ import annotations

import json

import pytest

from workers.analytics import synthetic, toolkit

pytestmark = pytest.mark.unit


def test_every_tool_answers_json_for_process_data() -> None:
    kit = toolkit.Toolkit(synthetic.process_runs(runs=60, seed=2), "process_analysis")
    for name in toolkit.TOOL_NAMES:
        answer = kit.call(name)
        json.dumps(answer, allow_nan=False)
        assert answer["dataset"] == "runs"
        assert len(json.dumps(answer)) < 20_000
    assert kit.bottleneck_detector()["bottlenecks"][0]["subject"] == "Manager approval"
    assert {c["subject"] for c in kit.automation_recommender()["candidates"]} >= {"Data entry"}
    assert kit.workflow_analyzer()["kpis"]["runs"]["value"] == 60


def test_module_functions_and_kpi_calculator() -> None:
    answer = toolkit.kpi_calculator({"metrics": {"sales": 10000, "costs": 7000}})
    margin = next(k for k in answer["kpis"] if k["name"] == "margin_pct")
    assert margin["value"] == 30.0
    assert margin["formula"] == "(sales - costs) / sales * 100"
    series = toolkit.trend_identifier(synthetic.daily_series(), "trend_analysis")
    assert {f["kind"] for f in series["findings"]} >= {"trend", "seasonality", "changepoint"}
    table = toolkit.data_analyzer(synthetic.correlated_records(rows=60), "data_interpretation")
    assert table["findings"][0]["subject"] == "ad_spend"
    processed = toolkit.data_processor(synthetic.correlated_records(rows=60))
    assert processed["rows"] == 60
    assert processed["formats"] == ["records"]


def test_invalid_data_is_answered_not_raised() -> None:
    answer = toolkit.insight_extractor({"runs": "nope"}, "process_analysis")
    assert answer["error"] == "invalid_data"
    assert answer["problems"][0]["loc"] == ["data", "runs"]
    assert toolkit.Toolkit({}).call("no_such_tool")["error"] == "unknown_tool"
