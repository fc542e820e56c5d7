"""A template-driven custom analysis through real processes, and the worker's own exporter."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bi_engine.constants import API_PREFIX as API
from tests.acceptance.ops.conftest import auth, free_port

pytestmark = [pytest.mark.acceptance, pytest.mark.slow]

SAMPLE = Path(__file__).resolve().parents[3] / "bi_engine" / "samples" / "process_log.json"
QUESTION = "Which Process Step should we automate first?"
# a local provider that is not running: each job tries it once, then the pattern narrator
OFFLINE = {
    "BI_LLM_CHAIN": "ollama/llama3.1,pattern",
    "OLLAMA_HOST": f"http://127.0.0.1:{free_port()}",
    "BI_STALLED_AFTER_S": "4",
}


async def wait_finished(http: httpx.AsyncClient, job_id: str, headers: dict[str, str]) -> Any:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = (await http.get(f"{API}/jobs/{job_id}", headers=headers)).json()
        if status["status"] in ("completed", "failed", "cancelled"):
            return status
        await asyncio.sleep(1.0)  # 60 status reads a minute: the limit
    raise AssertionError(f"{job_id} did not finish")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_a_saved_template_drives_a_custom_analysis_on_a_real_worker(start, settings):
    api = start("serve", env=OFFLINE)
    worker = start("worker", "--concurrency", "2", env=OFFLINE)
    headers = auth(settings)
    data = json.loads(SAMPLE.read_text())["data"]
    template = {
        "name": "Monthly invoice review",
        "question": QUESTION,
        "config": {"context": "Finance operations", "metrics_focus": ["cycle_time"]},
    }
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        created = await http.post(f"{API}/templates", json=template, headers=headers)
        assert created.status_code == 201, created.text
        body = {"type": "custom_analysis", "data": {**data, "template_id": created.json()["id"]}}
        submitted = await http.post(f"{API}/analyze", json=body, headers=headers)
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["job_id"]
        status = await wait_finished(http, job_id, headers)
        assert status["status"] == "completed", status
        report = (await http.get(f"{API}/jobs/{job_id}/report", headers=headers)).text
        health = (await http.get("/health")).json()
    assert QUESTION in report
    assert health["checks"]["workers"]["alive"] >= 1
    (ollama,) = health["checks"]["llm"]["providers"]
    assert ollama["provider"] == "ollama/llama3.1"
    assert ollama["circuit"] in ("closed", "open")
    assert ollama["workers_reporting"] == 1

    worker.wait_for("/metrics")
    text = httpx.get(f"{worker.url}/metrics", timeout=5).text
    found = samples(text)
    assert found[("bi_jobs_completed_total", (("type", "custom_analysis"),))] == 1
    assert found[("bi_job_duration_seconds_count", (("type", "custom_analysis"),))] == 1
    assert found[("bi_job_wait_seconds_count", ())] == 1
    assert found[("bi_workers_alive", ())] >= 1
    assert ("bi_llm_circuit_open", (("provider", "ollama/llama3.1"),)) in found
    outcomes = {k[1] for k in found if k[0] == "bi_llm_requests_total"}
    assert (("outcome", "error"), ("provider", "ollama/llama3.1")) in outcomes
    if shutil.which("promtool"):
        done = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
