"""Property tests: row order and units do not change the conclusions; no input, however odd,
crashes the analytics — it is analysed or refused with ``InvalidData`` and a location."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.analytics.conftest import as_json
from workers.analytics import AnalyticsReport, InvalidData, analyze, synthetic

pytestmark = pytest.mark.unit

FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _table(seed: int, rows: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 10, rows)
    y = 2 * x + rng.normal(0, 8, rows)
    y[rng.integers(0, rows)] += 400
    group = rng.choice(["a", "b", "c"], rows)
    return [
        {
            "x": round(float(a), 3),
            "y": round(float(b), 3),
            "g": str(g),
            "z": None if i % 9 == 0 else round(float(rng.normal()), 3),
        }
        for i, (a, b, g) in enumerate(zip(x, y, group, strict=True))
    ]


def _shape(report: AnalyticsReport, remap: dict[int, int] | None = None) -> list[tuple[Any, ...]]:
    """Findings as comparable tuples; row indices mapped back to the original order."""
    out = []
    for f in report.analysis.findings:
        ev = dict(f.evidence)
        if remap is not None and f.kind == "anomaly" and "points" in ev:
            ev["points"] = sorted(remap[p] for p in ev["points"])
            ev.pop("values", None)
        out.append((f.kind, f.subject, f.severity, json.dumps(_rounded(ev), sort_keys=True)))
    return sorted(out)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.2g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


@FAST
@given(
    seed=st.integers(0, 10_000),
    rows=st.integers(30, 120),
    shuffle=st.randoms(use_true_random=False),
)
def test_record_order_does_not_matter(seed: int, rows: int, shuffle: random.Random) -> None:
    records = _table(seed, rows)
    order = list(range(rows))
    shuffle.shuffle(order)
    permuted = [records[i] for i in order]
    base = analyze("data_interpretation", {"records": records})
    again = analyze("data_interpretation", {"records": permuted})
    assert _shape(again, remap=dict(enumerate(order))) == _shape(
        base, remap={i: i for i in range(rows)}
    )


@FAST
@given(seed=st.integers(0, 10_000), factor=st.sampled_from([0.001, 3.7, 1000.0, 1e6]))
def test_rescaling_a_column_keeps_the_findings(seed: int, factor: float) -> None:
    records = _table(seed, 80)
    scaled = [{**r, "y": r["y"] * factor} for r in records]
    base = analyze("data_interpretation", {"records": records})
    again = analyze("data_interpretation", {"records": scaled})

    def key(report: AnalyticsReport) -> list[tuple[Any, ...]]:
        return sorted(
            (
                f.kind,
                f.subject,
                f.evidence.get("with"),
                f.evidence.get("points"),
                f.evidence.get("rho"),
            )
            for f in report.analysis.findings
        )

    assert key(again) == key(base)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), shuffle=st.randoms(use_true_random=False))
def test_run_and_step_order_does_not_matter(seed: int, shuffle: random.Random) -> None:
    data = synthetic.process_runs(runs=60, seed=seed)
    mixed = json.loads(json.dumps(data))
    shuffle.shuffle(mixed["runs"])
    for run in mixed["runs"]:
        shuffle.shuffle(run["steps"])
    base, again = analyze("process_analysis", data), analyze("process_analysis", mixed)
    assert _shape(again) == _shape(base)
    assert [(k.name, k.value) for k in again.analysis.kpis] == [
        (k.name, k.value) for k in base.analysis.kpis
    ]


@settings(max_examples=8, deadline=None)
@given(factor=st.sampled_from([0.01, 7.0, 1e5]), seed=st.integers(0, 100))
def test_series_conclusions_do_not_depend_on_units(factor: float, seed: int) -> None:
    data = synthetic.daily_series(seed=seed)
    scaled = json.loads(json.dumps(data))
    for point in scaled["series"][0]["points"]:
        point["v"] *= factor

    def key(report: AnalyticsReport) -> list[tuple[Any, ...]]:
        return sorted(
            (
                f.kind,
                f.evidence.get("date"),
                f.evidence.get("period"),
                f.evidence.get("direction"),
                round(f.evidence.get("change_pct") or 0),
            )
            for f in report.analysis.findings
        )

    assert key(analyze("trend_analysis", scaled)) == key(analyze("trend_analysis", data))


def test_same_instants_in_other_time_zones_give_the_same_process() -> None:
    data = synthetic.process_runs(runs=40, seed=3)
    shifted = json.loads(json.dumps(data))
    for run in shifted["runs"]:
        for step in run["steps"]:
            for key in ("started_at", "finished_at"):
                step[key] = step[key].replace("Z", "+00:00")
    assert as_json(analyze("process_analysis", shifted)) == as_json(
        analyze("process_analysis", data)
    )


# ----------------------------------------------------------------------------- edge cases
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**18), 10**18),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
names = st.text(min_size=1, max_size=6)


def _analyze_or_refuse(analysis_type: str, data: Any) -> None:
    try:
        report = analyze(analysis_type, data)
    except InvalidData as exc:
        refused = exc
    else:
        as_json(report)
        return
    assert refused.problems
    assert all(p.loc and p.loc[0] in ("data", "type") for p in refused.problems)
    json.dumps(refused.details())


@FAST
@given(st.lists(st.dictionaries(names, scalars, max_size=4), max_size=25))
def test_arbitrary_records_never_crash(records: list[dict[str, Any]]) -> None:
    _analyze_or_refuse("data_interpretation", {"records": records})


@FAST
@given(
    st.lists(
        st.fixed_dictionaries({"t": st.one_of(scalars, st.dates().map(str)), "v": scalars}),
        max_size=30,
    )
)
def test_arbitrary_series_never_crash(points: list[dict[str, Any]]) -> None:
    _analyze_or_refuse("trend_analysis", {"series": [{"name": "s", "points": points}]})


@FAST
@given(st.dictionaries(names, scalars, max_size=6))
def test_arbitrary_metrics_never_crash(metrics: dict[str, Any]) -> None:
    _analyze_or_refuse("custom_analysis", {"metrics": metrics})


step = st.fixed_dictionaries(
    {
        "name": st.one_of(names, scalars),
        "started_at": st.one_of(scalars, st.datetimes().map(str)),
        "finished_at": st.one_of(scalars, st.datetimes().map(str)),
        "status": st.sampled_from(["success", "failed", "completed", "running", "odd", None]),
    }
)


@FAST
@given(
    st.lists(
        st.fixed_dictionaries({"run_id": scalars, "steps": st.lists(step, max_size=4)}), max_size=8
    )
)
def test_arbitrary_runs_never_crash(runs: list[dict[str, Any]]) -> None:
    _analyze_or_refuse("process_analysis", {"runs": runs})


@pytest.mark.parametrize(
    ("analysis_type", "data"),
    [
        ("data_interpretation", {"records": []}),
        ("process_analysis", {"runs": []}),
        ("process_analysis", {"events": []}),
        ("optimization_review", {"n8n_executions": []}),
        ("trend_analysis", {"series": []}),
        ("data_interpretation", {"csv": "   "}),
        ("custom_analysis", {}),
    ],
)
def test_empty_input_is_refused_with_a_location(analysis_type: str, data: dict[str, Any]) -> None:
    with pytest.raises(InvalidData) as exc:
        analyze(analysis_type, data)
    assert exc.value.problems[0].loc[0] == "data"


def test_one_row_nans_and_huge_values() -> None:
    for records in (
        [{"a": 1}],
        [{"a": math.nan, "b": None}] * 3,
        [{"a": 1e308 * (i % 2 or -1), "b": 1e-300 * i} for i in range(30)],
    ):
        as_json(analyze("data_interpretation", {"records": records}))
    big = {"metrics": {"sales": 1e308, "costs": -1e308}}
    as_json(analyze("custom_analysis", big))


def test_unicode_names_are_kept_exactly() -> None:
    steps = (
        ("Préparation", 5, 0.2, False),
        ("審査 承認", 900, 0.3, True),
        ("Zahlung 💶", 4, 0.2, True),
    )
    report = analyze(
        "process_analysis",
        synthetic.process_runs(runs=80, seed=2, steps=steps, failing=None, rework=None),
    )
    assert [f.subject for f in report.analysis.findings if f.kind == "bottleneck"] == ["審査 承認"]
    data = synthetic.correlated_records(rows=50)
    renamed = [{"Ausgaben €": r["ad_spend"], "リード": r["leads"]} for r in data["records"]]
    found = analyze("data_interpretation", {"records": renamed}).analysis.findings
    assert [(f.subject, f.evidence["with"]) for f in found if f.kind == "correlation"] == [
        ("Ausgaben €", "リード")
    ]
