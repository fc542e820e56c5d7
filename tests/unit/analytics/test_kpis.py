"""The KPI calculator derives business ratios with formulas in the input's own names."""

from __future__ import annotations

import pytest

from tests.unit.analytics.conftest import kpi_value, of_kind
from workers.analytics import analyze

pytestmark = pytest.mark.unit


def _kpi(report, name):  # type: ignore[no-untyped-def]
    return next(k for k in report.analysis.kpis if k.name == name)


def test_sales_and_costs_give_profit_3000_and_margin_30_percent() -> None:
    report = analyze("custom_analysis", {"metrics": {"sales": 10000, "costs": 7000}})
    assert kpi_value(report, "profit") == 3000
    margin = _kpi(report, "margin_pct")
    assert margin.value == 30.0
    assert margin.unit == "%"
    assert margin.formula == "(sales - costs) / sales * 100"
    assert kpi_value(report, "cost_ratio_pct") == 70.0
    assert kpi_value(report, "roi_pct") == pytest.approx(42.9)
    assert of_kind(report, "kpi_alert") == []


def test_ratios_from_orders_visitors_customers_investment() -> None:
    metrics = {
        "Revenue": 50000,
        "marketing_spend": 5000,
        "orders": 400,
        "visitors": 20000,
        "new_customers": 100,
        "customers": 1000,
        "churned": 150,
        "profit": 8000,
    }
    report = analyze("custom_analysis", {"metrics": metrics})
    assert kpi_value(report, "average_order_value") == 125
    assert kpi_value(report, "conversion_rate") == 0.02
    assert _kpi(report, "conversion_rate").unit == "ratio"
    assert kpi_value(report, "customer_acquisition_cost") == 50
    assert kpi_value(report, "roi_pct") == 160.0
    assert _kpi(report, "roi_pct").formula == "profit / marketing_spend * 100"
    assert kpi_value(report, "margin_pct") == 16.0
    assert kpi_value(report, "churn_rate") == 0.15
    assert [f.subject for f in of_kind(report, "kpi_alert")] == ["churn_rate"]


def test_italian_names_and_growth_against_previous_period() -> None:
    report = analyze(
        "custom_analysis", {"metrics": {"fatturato": 80, "costi": 100, "fatturato_previous": 100}}
    )
    assert kpi_value(report, "profit") == -20
    assert kpi_value(report, "fatturato_growth_pct") == -20.0
    alerts = {f.subject: f for f in of_kind(report, "kpi_alert")}
    assert alerts["margin_pct"].severity == "critical"  # -25% margin
    assert alerts["fatturato"].evidence["growth_pct"] == -20.0


def test_zero_denominators_are_skipped_not_infinite() -> None:
    report = analyze("custom_analysis", {"metrics": {"sales": 0, "costs": 10, "orders": 0}})
    names = {k.name for k in report.analysis.kpis}
    assert "margin_pct" not in names
    assert "average_order_value" not in names
    assert kpi_value(report, "profit") == -10


def test_metrics_are_unit_invariant() -> None:
    base = analyze("custom_analysis", {"metrics": {"sales": 10000, "costs": 7000}})
    scaled = analyze("custom_analysis", {"metrics": {"sales": 10_000_000, "costs": 7_000_000}})
    for name in ("margin_pct", "cost_ratio_pct", "roi_pct"):
        assert kpi_value(base, name) == kpi_value(scaled, name)
