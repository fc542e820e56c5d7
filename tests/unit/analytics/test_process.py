"""Process analytics find planted bottlenecks, failing steps, rework and automation
candidates by name, and find nothing severe in a process that is pure noise."""

from __future__ import annotations

import pytest

from tests.unit.analytics.conftest import as_json, kpi_value, of_kind
from workers.analytics import analyze, synthetic

pytestmark = pytest.mark.unit

STEPS = (
    ("Intake", 10, 0.2, False),
    ("Review", 12, 0.2, True),
    ("Legal sign-off", 600, 0.3, False),
    ("Close", 8, 0.2, True),
)


@pytest.fixture(scope="module")
def planted() -> dict:
    return synthetic.process_runs(
        runs=150,
        seed=3,
        steps=STEPS,
        failing="Review",
        fail_rate=0.3,
        rework="Intake",
        rework_rate=0.2,
    )


def test_step_that_takes_most_of_the_cycle_time_is_the_bottleneck(planted: dict) -> None:
    report = analyze("process_analysis", planted)
    found = of_kind(report, "bottleneck")
    assert [f.subject for f in found] == ["Legal sign-off"]
    share = found[0].evidence["share_of_cycle_time"]
    assert 0.8 < share <= 1
    assert found[0].severity in ("high", "critical")
    assert 0.9 <= found[0].confidence <= 1


def test_step_failing_30_percent_is_the_failure_hotspot(planted: dict) -> None:
    report = analyze("process_analysis", planted)
    found = of_kind(report, "failure_hotspot")
    assert [f.subject for f in found] == ["Review"]
    ev = found[0].evidence
    assert ev["failure_rate"] == pytest.approx(0.3, abs=0.08)
    assert ev["wilson_low_rate"] < ev["failure_rate"] < ev["wilson_high_rate"]
    assert ev["runs"] == 150
    assert found[0].severity == "high"


def test_kpis_are_consistent_with_the_runs(planted: dict) -> None:
    report = analyze("process_analysis", planted)
    failed = sum(r["status"] == "failed" for r in planted["runs"])
    assert kpi_value(report, "runs") == 150
    assert kpi_value(report, "failed_runs") == failed
    assert kpi_value(report, "success_rate") == pytest.approx(1 - failed / 150, abs=0.001)
    unit = next(k.unit for k in report.analysis.kpis if k.name == "median_cycle_time")
    assert unit == "hours"
    assert kpi_value(report, "median_cycle_time") <= kpi_value(report, "p90_cycle_time")
    assert kpi_value(report, "p90_cycle_time") <= kpi_value(report, "p95_cycle_time")


def test_rework_loop_is_reported_for_the_repeated_step(planted: dict) -> None:
    report = analyze("process_analysis", planted)
    rework = [f for f in of_kind(report, "kpi_alert") if f.evidence.get("pattern") == "rework"]
    assert [f.subject for f in rework] == ["Intake"]
    assert rework[0].evidence["rework_rate"] == pytest.approx(0.2, abs=0.08)


def test_automation_candidates_are_manual_frequent_and_priced(planted: dict) -> None:
    report = analyze("process_analysis", planted)
    found = {f.subject: f for f in of_kind(report, "automation_candidate")}
    assert set(found) == {"Review", "Close"}  # the manual, routine steps
    ev = found["Close"].evidence
    assert ev["amount_saved_per_month"] == pytest.approx(ev["hours_saved_per_month"] * 45, rel=0.01)
    assert ev["payback_months"] == pytest.approx(
        ev["implementation_cost"] / ev["amount_saved_per_month"], rel=0.02
    )
    recs = {r.subject: r for r in report.analysis.recommendations if r.title.startswith("Automate")}
    assert recs["Close"].estimated_savings["hours_per_month"] == ev["hours_saved_per_month"]


def test_no_hourly_rate_means_hours_but_no_money(planted: dict) -> None:
    data = {k: v for k, v in planted.items() if k != "costs"}
    report = analyze("process_analysis", data)
    for f in of_kind(report, "automation_candidate"):
        assert "amount_saved_per_month" not in f.evidence
        assert f.evidence["hours_saved_per_month"] > 0


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15])
def test_noise_process_has_no_severe_bottleneck_or_hotspot(seed: int) -> None:
    report = analyze("process_analysis", synthetic.noise_runs(runs=120, seed=seed))
    assert of_kind(report, "bottleneck") == []
    assert of_kind(report, "failure_hotspot") == []
    assert kpi_value(report, "success_rate") == 1


def test_uniform_failures_are_not_a_hotspot() -> None:
    same = tuple((f"Step {k}", 20.0, 0.3, False) for k in range(3))
    data = synthetic.process_runs(runs=200, seed=4, steps=same, failing=None, rework=None)
    for i, run in enumerate(data["runs"]):  # every step fails equally often
        run["steps"][i % 3]["status"] = "failed" if i % 10 == 0 else "completed"
    assert of_kind(analyze("process_analysis", data), "failure_hotspot") == []


def test_n8n_slow_node_is_the_bottleneck() -> None:
    data = synthetic.n8n_executions(executions=40, seed=9, slow="Transform records", slow_ms=6000)
    report = analyze("optimization_review", data)
    assert [f.subject for f in of_kind(report, "bottleneck")] == ["Transform records"]
    unit = next(k.unit for k in report.analysis.kpis if k.name == "median_cycle_time")
    assert unit == "seconds"
    hotspot = of_kind(report, "failure_hotspot")
    assert all(f.subject == "Upsert to CRM" for f in hotspot)


def test_event_log_finds_the_same_bottleneck_and_hotspot() -> None:
    report = analyze("process_analysis", synthetic.events_log(runs=150, seed=5))
    assert [f.subject for f in of_kind(report, "bottleneck")] == ["Manager approval"]
    assert [f.subject for f in of_kind(report, "failure_hotspot")] == ["Three-way match"]


def test_event_log_without_end_times_uses_the_next_start() -> None:
    events = []
    for case in range(30):
        base = 1_767_225_600 + case * 86_400
        for offset, name in ((0, "Open"), (600, "Wait for customer"), (30_000, "Resolve")):
            events.append({"case_id": f"c{case}", "activity": name, "start": base + offset})
    report = analyze("process_analysis", {"events": events})
    assert [f.subject for f in of_kind(report, "bottleneck")] == ["Wait for customer"]
    as_json(report)


def test_variants_count_the_paths(planted: dict) -> None:
    report = analyze("process_analysis", planted)
    variants = report.facts["process"]["variants"]
    assert sum(v["runs"] for v in variants) <= 150
    assert variants[0]["runs"] >= variants[-1]["runs"]
    full = ["Intake", "Review", "Legal sign-off", "Close"]
    assert variants[0]["path"] == full
    assert kpi_value(report, "top_variant_share") == variants[0]["share"]


def test_waiting_before_a_step_is_attributed_to_it() -> None:
    runs = []
    for i in range(40):
        t = 1_767_225_600 + i * 86_400
        steps = [
            {"name": "Submit", "started_at": t, "finished_at": t + 300},
            {
                "name": "Approve",
                "started_at": t + 300 + 20_000 + i * 50,
                "finished_at": t + 300 + 20_000 + i * 50 + 240,
            },
            {
                "name": "Notify",
                "started_at": t + 21_000 + i * 50,
                "finished_at": t + 21_100 + i * 50,
            },
        ]
        runs.append(
            {"run_id": i, "started_at": t, "finished_at": t + 21_100 + i * 50, "steps": steps}
        )
    report = analyze("process_analysis", {"runs": runs})
    (found,) = of_kind(report, "bottleneck")
    assert found.subject == "Approve"
    assert found.evidence["waiting_share"] > 0.9
    rec = next(r for r in report.analysis.recommendations if r.subject == "Approve")
    assert "waiting" in rec.detail
