"""The operations files parse, name only real metrics, and pass their own tools' checks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]
CONTRACT_METRICS = {
    "bi_jobs_submitted_total",
    "bi_jobs_completed_total",
    "bi_jobs_failed_total",
    "bi_job_duration_seconds",
    "bi_job_wait_seconds",
    "bi_queue_size",
    "bi_workers_alive",
    "bi_sse_connections",
    "bi_http_requests_total",
    "bi_llm_requests_total",
    "bi_llm_tokens_total",
    "bi_llm_cost_eur_total",
    "bi_webhook_deliveries_total",
}
EXTRA_METRICS = {"bi_llm_circuit_open"}
METRIC = re.compile(r"\bbi_[a-z_]+")


def _metric_names(text: str) -> set[str]:
    names = set(METRIC.findall(text))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names if not n.startswith("bi_engine")}


def test_dashboard_and_alerts_use_only_known_metrics() -> None:
    dashboard = (ROOT / "ops/grafana/bi-engine-dashboard.json").read_text()
    alerts = (ROOT / "ops/prometheus/alerts.yml").read_text()
    json.loads(dashboard)
    used = _metric_names(dashboard) | _metric_names(alerts)
    assert used <= CONTRACT_METRICS | EXTRA_METRICS, used - CONTRACT_METRICS - EXTRA_METRICS
    assert _metric_names(dashboard) >= CONTRACT_METRICS


def test_alert_rules_cover_the_operational_risks() -> None:
    rules = yaml.safe_load((ROOT / "ops/prometheus/alerts.yml").read_text())
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {
        "BIEngineNoLiveWorker",
        "BIEngineBacklogGrowing",
        "BIEngineHighFailureRate",
        "BIEngineLLMCircuitOpen",
    } <= names


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_rules_and_config() -> None:
    for args in (
        ["check", "rules", "ops/prometheus/alerts.yml"],
        ["check", "config", "ops/prometheus/scrape.yml"],
    ):
        done = subprocess.run(["promtool", *args], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_n8n_workflow_is_importable() -> None:
    workflow = json.loads((ROOT / "ops/n8n/bi-engine-workflow.json").read_text())
    names = {node["name"] for node in workflow["nodes"]}
    types = {node["type"] for node in workflow["nodes"]}
    assert {"n8n-nodes-base.httpRequest", "n8n-nodes-base.webhook"} <= types
    for source, outputs in workflow["connections"].items():
        assert source in names
        for branch in outputs["main"]:
            assert all(link["node"] in names for link in branch)
    submit = next(n for n in workflow["nodes"] if n["name"] == "Submit to BI Engine")
    assert submit["parameters"]["url"].endswith("/api/analyze")
    assert "analysis_type" in submit["parameters"]["jsonBody"]


def test_stack_controller_entries() -> None:
    services = json.loads((ROOT / "ops/stack-controller/services.json").read_text())
    api = services["business-intelligence-dev"]
    assert api["container"] == "pilotpros-bi-dev"
    assert api["healthCheck"]["endpoint"].endswith(":8000/health")
    assert "redis-dev" not in api["dependencies"], "Redis is never required"


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_uses_pilotpros_names_and_health_gates() -> None:
    services = _compose()["services"]
    assert services["postgres-dev"]["container_name"] == "pilotpros-postgres-dev"
    api = services["business-intelligence-dev"]
    assert api["container_name"] == "pilotpros-bi-dev"
    assert "8000:8000" in api["ports"]
    assert api["depends_on"]["postgres-dev"]["condition"] == "service_healthy"
    assert api["depends_on"]["business-intelligence-migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["redis-dev"]["profiles"] == ["cache"]
    assert any("worker" in str(s.get("command")) for s in services.values())
    for name in ("postgres-dev", "business-intelligence-dev", "redis-dev"):
        assert "healthcheck" in services[name]


def test_compose_requires_secrets() -> None:
    text = (ROOT / "compose.yaml").read_text()
    for var in ("JWT_SECRET", "POSTGRES_PASSWORD", "BI_CALLBACK_SECRET"):
        assert "${" + var + ":?" in text


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_config_validates() -> None:
    env = os.environ | {"POSTGRES_PASSWORD": "x", "JWT_SECRET": "y" * 40, "BI_CALLBACK_SECRET": "z"}
    done = subprocess.run(
        ["docker-compose", "-f", "compose.yaml", "--profile", "cache", "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    env.pop("JWT_SECRET")
    refused = subprocess.run(
        ["docker-compose", "-f", "compose.yaml", "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0
    assert "JWT_SECRET" in refused.stderr


def test_containerfile_runs_as_non_root() -> None:
    text = (ROOT / "Containerfile").read_text()
    assert text.count("FROM ") >= 2, "multi-stage"
    assert re.search(r"^USER bi$", text, re.M)
    assert 'CMD ["serve"' in text
