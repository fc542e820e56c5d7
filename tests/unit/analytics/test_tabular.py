"""Tabular analytics: planted correlations, outliers, gaps and segment effects are found by
column name; small or unrelated samples produce no correlation."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.analytics.conftest import as_json, kpi_value, of_kind
from workers.analytics import analyze, synthetic

pytestmark = pytest.mark.unit


def test_strongly_correlated_pair_is_found_with_subject_and_with() -> None:
    report = analyze("data_interpretation", synthetic.correlated_records(rows=200, r=0.9))
    found = of_kind(report, "correlation")
    assert [(f.subject, f.evidence["with"]) for f in found] == [("ad_spend", "leads")]
    ev = found[0].evidence
    assert ev["r"] == pytest.approx(0.9, abs=0.05)
    assert ev["p_value"] < 1e-10
    assert found[0].severity == "high"


def test_small_sample_never_yields_a_correlation() -> None:
    rows = [{"a": float(i), "b": float(i) + (0.5 if i % 2 else -0.5)} for i in range(8)]
    report = analyze("data_interpretation", {"records": rows})
    assert of_kind(report, "correlation") == []


def test_many_unrelated_columns_do_not_produce_spurious_correlations() -> None:
    rng = np.random.default_rng(0)
    rows = [{f"c{j}": float(v) for j, v in enumerate(row)} for row in rng.normal(size=(60, 15))]
    report = analyze("data_interpretation", {"records": rows})
    assert of_kind(report, "correlation") == []  # 105 pairs, BH-corrected


def test_planted_outliers_are_found_at_their_rows() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(100, 5, 200)
    planted = [13, 77, 150]
    values[planted] = [180, 20, 240]
    report = analyze("data_interpretation", {"records": [{"amount": float(v)} for v in values]})
    (found,) = of_kind(report, "anomaly")
    assert found.subject == "amount"
    assert found.evidence["points"] == planted
    assert found.evidence["count"] == 3


def test_heavy_tailed_column_is_not_full_of_anomalies() -> None:
    rng = np.random.default_rng(2)
    rows = [{"deal_size": float(v)} for v in rng.lognormal(8, 1.0, 400)]
    found = of_kind(analyze("data_interpretation", {"records": rows}), "anomaly")
    assert all(f.evidence["count"] <= 4 for f in found)


def test_data_quality_missing_duplicates_constant_and_mixed() -> None:
    rows = [{"id_code": f"A{i}", "city": "Rome", "score": i % 7, "note": "ok"} for i in range(40)]
    for i in range(0, 40, 5):
        rows[i]["note"] = None
    rows[3]["score"] = "seven"
    rows.append(dict(rows[1]))
    report = analyze("data_interpretation", {"records": rows})
    quality = {(f.subject, f.evidence["issue"]) for f in of_kind(report, "data_quality")}
    assert ("note", "missing_values") in quality
    assert ("records", "duplicates") in quality
    assert ("city", "constant") in quality
    assert ("score", "mixed_types") in quality
    missing = next(f for f in of_kind(report, "data_quality") if f.subject == "note")
    assert missing.evidence["missing"] == 8
    assert missing.evidence["missing_rate"] == pytest.approx(8 / 41, abs=0.001)
    assert kpi_value(report, "duplicate_rows") == 1


def test_segment_driver_names_the_group_that_differs() -> None:
    report = analyze("data_interpretation", synthetic.customer_records())
    drivers = [
        f for f in of_kind(report, "correlation") if f.evidence.get("method") == "kruskal_wallis"
    ]
    revenue = next(f for f in drivers if f.evidence["measure"] == "revenue")
    assert revenue.subject == "segment"
    assert revenue.evidence["with"] == "revenue"
    assert revenue.evidence["top_group"] == "Enterprise"
    assert all(f.evidence["segment"] != "region" for f in drivers)  # region is noise


def test_customer_sample_findings() -> None:
    report = analyze("data_interpretation", synthetic.customer_records())
    pairs = {(f.subject, f.evidence["with"]) for f in of_kind(report, "correlation")}
    assert ("marketing_spend", "revenue") in pairs
    anomalies = {f.subject: f for f in of_kind(report, "anomaly")}
    assert anomalies["revenue"].evidence["count"] >= 4
    assert any(f.subject == "satisfaction" for f in of_kind(report, "data_quality"))
    as_json(report)


def test_csv_is_typed_like_records() -> None:
    rows = synthetic.correlated_records(rows=80)["records"]
    text = "ad_spend,leads,temperature\n" + "\n".join(
        f"{r['ad_spend']},{r['leads']},{r['temperature']}" for r in rows
    )
    from_csv = analyze("data_interpretation", {"csv": text})
    from_records = analyze("data_interpretation", {"records": rows})
    assert from_csv.analysis.findings == [
        f.model_copy(update={"subject": f.subject}) for f in from_records.analysis.findings
    ] or [f.title for f in from_csv.analysis.findings] == [
        f.title for f in from_records.analysis.findings
    ]
    assert from_csv.facts["table"]["columns"] == from_records.facts["table"]["columns"]
