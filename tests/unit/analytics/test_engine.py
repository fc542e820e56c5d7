"""The entry point: contract shape, JSON safety, unit rules of evidence keys, determinism,
ranking, and the import boundary of the analytics package."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.analytics.conftest import as_json
from workers.analytics import AnalyticsReport, analyze, synthetic

pytestmark = pytest.mark.unit

SAMPLES = Path(__file__).resolve().parents[3] / "bi_engine" / "samples"
SEVERITIES = ["critical", "high", "medium", "low", "info"]


@pytest.fixture(scope="module")
def sample_reports() -> dict[str, AnalyticsReport]:
    out = {}
    for path in sorted(SAMPLES.glob("*.json")):
        body = json.loads(path.read_text())
        out[path.name] = analyze(
            body["type"], body["data"], metrics_focus=body.get("metrics_focus")
        )
    return out


def test_bundled_samples_are_the_generator_output() -> None:
    for name, body in synthetic.samples().items():
        assert json.loads((SAMPLES / name).read_text()) == json.loads(json.dumps(body)), name
        assert (SAMPLES / name).stat().st_size < 300_000


def test_samples_show_their_planted_signals(sample_reports: dict[str, AnalyticsReport]) -> None:
    def subjects(name: str, kind: str) -> set[str]:
        return {f.subject for f in sample_reports[name].analysis.findings if f.kind == kind}

    assert subjects("process_log.json", "bottleneck") == {"Manager approval"}
    assert subjects("process_log.json", "failure_hotspot") == {"Three-way match"}
    assert "Data entry" in subjects("process_log.json", "automation_candidate")
    assert subjects("n8n_executions.json", "bottleneck") == {"Fetch ERP invoices"}
    assert {"trend", "changepoint", "seasonality"} <= {
        f.kind for f in sample_reports["sales_series.json"].analysis.findings
    }
    assert subjects("customer_dataset.json", "anomaly") >= {"revenue"}
    assert "marketing_spend" in subjects("customer_dataset.json", "correlation")


def _walk(value: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _walk(v, str(k))]
    if isinstance(value, list):
        return [pair for v in value for pair in _walk(v, key)]
    return [(key, value)]


def test_output_is_strict_json_and_follows_the_unit_rules(
    sample_reports: dict[str, AnalyticsReport],
) -> None:
    for report in sample_reports.values():
        as_json(report)
        for finding in report.analysis.findings:
            assert 0 <= finding.confidence <= 1
            for key, value in _walk(finding.evidence):
                assert value is None or isinstance(value, str | int | float | bool)
                fraction_key = key.endswith("_rate") or "share" in key
                if fraction_key and isinstance(value, int | float) and not isinstance(value, bool):
                    assert 0 <= value <= 1, (finding.kind, key, value)
                if key == "date":
                    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(T[\d:]+Z)?", value)
        for kpi in report.analysis.kpis:
            if kpi.name.endswith("_rate") and kpi.value is not None:
                assert 0 <= kpi.value <= 1
                assert kpi.unit == "ratio"
            if kpi.name.endswith("_pct"):
                assert kpi.unit == "%"


def test_findings_are_ranked_and_recommendations_numbered(
    sample_reports: dict[str, AnalyticsReport],
) -> None:
    for report in sample_reports.values():
        ranks = [SEVERITIES.index(f.severity) for f in report.analysis.findings]
        assert ranks == sorted(ranks)
        recs = report.analysis.recommendations
        assert [r.priority for r in recs] == list(range(1, len(recs) + 1))
        items = [item for phase in report.analysis.roadmap for item in phase.items]
        assert sorted(items) == sorted(r.title for r in recs)
        assert [p.phase for p in report.analysis.roadmap] == list(
            range(1, len(report.analysis.roadmap) + 1)
        )


def test_numbers_in_recommendation_text_come_from_the_analysis(
    sample_reports: dict[str, AnalyticsReport],
) -> None:
    for report in sample_reports.values():
        known = {
            _norm(v) for _, v in _walk(report.model_dump(mode="json")["analysis"]) if _is_num(v)
        }
        known |= {
            _norm(v * 100)
            for _, v in _walk(report.model_dump(mode="json")["analysis"])
            if _is_num(v)
        }
        known |= {
            _norm(float(t))
            for _, v in _walk(report.model_dump(mode="json")["analysis"]["findings"])
            if isinstance(v, str)
            for t in re.findall(r"\d+(?:\.\d+)?", v)
        }
        texts = [f"{r.title} {r.detail} {r.impact}" for r in report.analysis.recommendations]
        texts += [f"{f.title} {f.detail}" for f in report.analysis.findings]
        for quoted in texts:
            text = re.sub(r"\d{4}-\d{2}-\d{2}", " ", quoted)
            for token in re.findall(r"-?\d+(?:\.\d+)?", text):
                if re.fullmatch(r"\d{4}", token) or token in {
                    "0",
                    "1",
                    "2",
                    "3",
                    "4",
                    "5",
                    "6",
                    "7",
                    "8",
                    "9",
                    "10",
                    "12",
                    "30",
                    "50",
                }:
                    continue
                assert _norm(float(token)) in known, (quoted, token)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _norm(v: float) -> str:
    return f"{round(float(v), 1):.1f}"


def test_same_input_same_output() -> None:
    data = synthetic.process_runs(runs=80, seed=5)
    assert as_json(analyze("process_analysis", data)) == as_json(analyze("process_analysis", data))


def test_metrics_focus_moves_matching_kpis_first() -> None:
    data = {**synthetic.process_runs(runs=60, seed=5), "metrics": {"sales": 10, "costs": 5}}
    report = analyze("process_analysis", data, metrics_focus=["margin"])
    assert report.analysis.kpis[0].name == "margin_pct"
    assert report.facts["metrics_focus"] == ["margin"]


def test_summary_is_left_for_the_narrator() -> None:
    report = analyze("custom_analysis", {"metrics": {"sales": 1, "costs": 2}})
    assert report.analysis.summary.headline == ""
    assert report.dataset == "metrics"


def test_analytics_never_import_llm_or_other_worker_code() -> None:
    root = Path(__file__).resolve().parents[3] / "workers" / "analytics"
    for path in root.rglob("*.py"):
        text = path.read_text()
        for line in re.findall(r"^\s*(?:from|import)\s+([\w.]+)", text, flags=re.M):
            assert not line.startswith(("crewai", "litellm", "psycopg", "procrastinate")), path
            if line.startswith("workers"):
                assert line.startswith("workers.analytics"), (path, line)
            if line.startswith("bi_engine"):
                assert line.startswith("bi_engine.domain"), (path, line)
    code = "import sys, workers.analytics; assert not {'crewai', 'litellm'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root.parents[1])
