"""Time series: planted growth, level shifts, weekly seasonality and spikes are found with
the right dates; white noise yields no severe trend and no changepoint."""

from __future__ import annotations

import pytest

from tests.unit.analytics.conftest import as_json, kpi_value, of_kind
from workers.analytics import analyze, synthetic

pytestmark = pytest.mark.unit


def test_series_growing_15_percent_is_an_upward_trend_of_15_percent() -> None:
    data = synthetic.daily_series(growth=0.15, weekly=False, shift_on=None, noise=0.02)
    report = analyze("trend_analysis", data)
    (trend,) = of_kind(report, "trend")
    assert trend.subject == "revenue"
    assert trend.evidence["direction"] == "up"
    assert trend.evidence["change_pct"] == pytest.approx(15, abs=2.5)
    assert trend.evidence["slope_per_day"] == pytest.approx(10_000 * 0.15 / 181, rel=0.2)
    assert trend.severity == "medium"
    assert of_kind(report, "changepoint") == []


def test_declining_series_is_a_downward_trend() -> None:
    data = synthetic.daily_series(growth=-0.3, weekly=False, shift_on=None, name="margin")
    (trend,) = of_kind(analyze("trend_analysis", data), "trend")
    assert trend.subject == "margin"
    assert trend.evidence["direction"] == "down"
    assert trend.evidence["change_pct"] == pytest.approx(-30, abs=3)
    assert trend.severity == "high"


def test_level_shift_is_dated() -> None:
    data = synthetic.daily_series(growth=0.0, weekly=False, shift_on="2026-03-10", shift=0.2)
    (cp,) = of_kind(analyze("trend_analysis", data), "changepoint")
    assert cp.subject == "revenue"
    assert abs(_day(cp.evidence["date"]) - _day("2026-03-10")) <= 3
    assert cp.evidence["mean_after"] / cp.evidence["mean_before"] == pytest.approx(1.2, abs=0.03)
    assert cp.severity == "high"


def test_weekly_seasonality_in_daily_data_has_period_7() -> None:
    data = synthetic.daily_series(growth=0.0, shift_on=None)
    report = analyze("trend_analysis", data)
    (season,) = of_kind(report, "seasonality")
    assert season.evidence["period"] == 7
    assert season.evidence["strength"] > 0.8
    assert season.evidence["peak"] == "Saturday"
    assert season.evidence["trough"] == "Sunday"
    assert of_kind(report, "changepoint") == []


def test_sample_series_has_trend_shift_and_season() -> None:
    report = analyze("trend_analysis", synthetic.daily_series())
    kinds = {f.kind for f in report.analysis.findings}
    assert {"trend", "changepoint", "seasonality"} <= kinds
    (cp,) = of_kind(report, "changepoint")
    assert abs(_day(cp.evidence["date"]) - _day("2026-04-15")) <= 5
    (trend,) = of_kind(report, "trend")
    assert trend.evidence["trend_change_pct"] == pytest.approx(15, abs=4)


@pytest.mark.parametrize("seed", range(1, 9))
def test_white_noise_has_no_severe_trend_and_no_changepoint(seed: int) -> None:
    report = analyze("trend_analysis", synthetic.noise_series(seed=seed))
    assert of_kind(report, "changepoint") == []
    assert all(f.severity not in ("high", "critical") for f in report.analysis.findings)
    assert of_kind(report, "seasonality") == []


def test_spike_is_an_anomaly_at_its_date() -> None:
    data = synthetic.daily_series(growth=0.1, shift_on=None)
    before = {
        p for f in of_kind(analyze("trend_analysis", data), "anomaly") for p in f.evidence["points"]
    }
    data["series"][0]["points"][100]["v"] *= 3
    (found,) = of_kind(analyze("trend_analysis", data), "anomaly")
    assert set(found.evidence["points"]) - before == {data["series"][0]["points"][100]["t"]}
    assert len(before) <= 1  # the clean series has at most a stray 4-sigma day


def test_forecast_continues_the_trend_with_an_interval() -> None:
    report = analyze("trend_analysis", synthetic.daily_series(weekly=False, shift_on=None))
    forecast = report.facts["series"][0]["forecast"]
    assert len(forecast) >= 7
    assert all(p["low"] < p["v"] < p["high"] for p in forecast)
    assert forecast[0]["t"] == "2026-07-02"
    assert kpi_value(report, "revenue_forecast") == forecast[-1]["v"]
    assert forecast[-1]["v"] > 11_000  # above the last level of a growing series


def test_records_with_time_field_become_series() -> None:
    rows = [
        {"day": p["t"], "sales": p["v"], "region": "x"}
        for p in synthetic.daily_series(weekly=False, shift_on=None)["series"][0]["points"]
    ]
    report = analyze(
        "trend_analysis", {"records": rows, "time_field": "day", "value_fields": ["sales"]}
    )
    assert [f.subject for f in of_kind(report, "trend")] == ["sales"]


def test_gaps_are_interpolated_for_the_season_but_not_reported() -> None:
    data = synthetic.daily_series(growth=0.0, shift_on=None)
    points = data["series"][0]["points"]
    data["series"][0]["points"] = [p for i, p in enumerate(points) if i % 11 != 5]
    report = analyze("trend_analysis", data)
    assert of_kind(report, "seasonality")[0].evidence["period"] == 7
    assert report.facts["series"][0]["points"] == len(data["series"][0]["points"])
    as_json(report)


def test_short_and_constant_series_do_not_crash() -> None:
    for values in ([5.0], [1.0, 2.0], [3.0] * 40):
        points = [{"t": 1_767_225_600 + i * 86_400, "v": v} for i, v in enumerate(values)]
        report = analyze("trend_analysis", {"series": [{"name": "x", "points": points}]})
        assert of_kind(report, "trend") == []
        assert of_kind(report, "changepoint") == []
        as_json(report)


def _day(text: str) -> int:
    from datetime import date

    return date.fromisoformat(text[:10]).toordinal()
