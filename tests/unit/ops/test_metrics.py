"""Metric names of CONTRACT section 11 on both exporters; the worker's observer counts right."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bi_engine.metrics import ApiMetrics
from workers.metrics import WorkerMetrics, breaker_states
from workers.narration.accounting import CallRecord
from workers.narration.breaker import BreakerBoard
from workers.runners import RunnerRegistry, run_test

pytestmark = pytest.mark.unit

CONTRACT = {
    "bi_jobs_submitted",
    "bi_jobs_completed",
    "bi_jobs_failed",
    "bi_job_duration_seconds",
    "bi_job_wait_seconds",
    "bi_queue_size",
    "bi_workers_alive",
    "bi_sse_connections",
    "bi_http_requests",
    "bi_llm_requests",
    "bi_llm_tokens",
    "bi_llm_cost_eur",
    "bi_webhook_deliveries",
}
WORKER = {
    "bi_jobs_completed",
    "bi_jobs_failed",
    "bi_job_duration_seconds",
    "bi_job_wait_seconds",
    "bi_workers_alive",
    "bi_llm_requests",
    "bi_llm_tokens",
    "bi_llm_cost_eur",
    "bi_webhook_deliveries",
    "bi_llm_circuit_open",
}


def families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    return {
        f.name: [(s.name, s.labels, s.value) for s in f.samples]
        for f in text_string_to_metric_families(text)
    }


def promtool_accepts(text: str) -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed")
    done = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_api_declares_every_name_but_the_live_gauge() -> None:
    metrics = ApiMetrics()
    metrics.database.update({"high": 1, "normal": 0, "low": 2}, 3)
    text = metrics.render().decode()
    found = families(text)
    # bi_sse_connections is registered by the live layer when the app starts
    assert CONTRACT - {"bi_sse_connections"} <= set(found)
    assert ("bi_queue_size", {"priority": "low"}, 2.0) in found["bi_queue_size"]
    assert found["bi_workers_alive"] == [("bi_workers_alive", {}, 3.0)]
    promtool_accepts(text)


def test_database_gauges_are_never_stale() -> None:
    metrics = ApiMetrics()
    metrics.database.update({"high": 1}, 1)
    metrics.database.update(None, None)
    found = families(metrics.render().decode())
    assert found["bi_queue_size"] == []
    assert found["bi_workers_alive"] == []


def test_the_worker_observer_counts_outcomes_waits_and_llm_calls_once() -> None:
    metrics = WorkerMetrics()
    metrics.attempt_started("process_analysis", 2.5)
    metrics.attempt_started("process_analysis", None)  # a retry: no second wait
    metrics.attempt_ended("process_analysis", "completed", None, 12.0)
    metrics.attempt_ended("trend_analysis", "failed", "invalid_data", 1.0)
    metrics.attempt_ended("trend_analysis", "retrying", "transient_error", 1.0)
    metrics.attempt_ended("trend_analysis", "cancelled", None, 1.0)
    hook = metrics.llm_calls_hook()
    first = CallRecord("openai/gpt-4o-mini", "gpt-4o-mini", "success", 100, 20, 0.01)
    second = CallRecord("openai/gpt-4o-mini", "gpt-4o-mini", "timeout")
    hook([first])
    hook([first, second])  # the runner hands over its whole record each time
    metrics.callback_attempted("delivered")
    metrics.callback_attempted("dead_letter")
    found = families(_render(metrics))
    assert ("bi_job_wait_seconds_count", {}, 1.0) in found["bi_job_wait_seconds"]
    assert ("bi_jobs_completed_total", {"type": "process_analysis"}, 1.0) in found[
        "bi_jobs_completed"
    ]
    failed = found["bi_jobs_failed"][0]
    assert failed[1:] == ({"type": "trend_analysis", "reason": "invalid_data"}, 1.0)
    duration = {(s[0], s[1]["type"]): s[2] for s in found["bi_job_duration_seconds"]}
    assert duration[("bi_job_duration_seconds_count", "process_analysis")] == 1.0
    assert duration[("bi_job_duration_seconds_count", "trend_analysis")] == 1.0
    requests = {s[1]["outcome"]: s[2] for s in found["bi_llm_requests"] if s[0].endswith("_total")}
    assert requests == {"success": 1.0, "timeout": 1.0}
    tokens = {s[1]["direction"]: s[2] for s in found["bi_llm_tokens"] if s[0].endswith("_total")}
    assert tokens == {"prompt": 100.0, "completion": 20.0}
    assert ("bi_llm_cost_eur_total", {"provider": "openai/gpt-4o-mini"}, 0.01) in found[
        "bi_llm_cost_eur"
    ]
    deliveries = {s[1]["outcome"] for s in found["bi_webhook_deliveries"]}
    assert deliveries == {"delivered", "dead_letter"}


def _render(metrics: WorkerMetrics) -> str:
    return generate_latest(metrics.registry).decode()


class BreakerRunner:
    """A runner with circuit breakers, like the AI Team runner."""

    def __init__(self, board: BreakerBoard) -> None:
        self.breakers = board

    async def __call__(self, ctx: object, sink: object) -> None:  # pragma: no cover
        raise NotImplementedError


def test_circuit_states_come_from_the_runners_breakers() -> None:
    board = BreakerBoard(threshold=2, cooldown_s=60)
    registry = RunnerRegistry()
    registry.register("test", run_test)
    shared = BreakerRunner(board)
    registry.register("process_analysis", shared)  # type: ignore[arg-type]
    registry.register("trend_analysis", shared)  # type: ignore[arg-type]
    chain = ("openai/gpt-4o-mini", "ollama/llama3.1", "pattern")
    assert breaker_states(registry, chain) == {
        "openai/gpt-4o-mini": "closed",
        "ollama/llama3.1": "closed",
    }
    board.get("ollama/llama3.1").record_failure()
    board.get("ollama/llama3.1").record_failure()
    states = breaker_states(registry, chain)
    assert states["ollama/llama3.1"] == "open"
    metrics = WorkerMetrics()
    metrics.set_circuits(states)
    found = families(_render(metrics))
    assert ("bi_llm_circuit_open", {"provider": "ollama/llama3.1"}, 1.0) in found[
        "bi_llm_circuit_open"
    ]
    assert ("bi_llm_circuit_open", {"provider": "openai/gpt-4o-mini"}, 0.0) in found[
        "bi_llm_circuit_open"
    ]


def test_the_worker_exporter_names_are_valid() -> None:
    metrics = WorkerMetrics()
    metrics.workers_alive.set(2)
    metrics.set_circuits({"openai/gpt-4o-mini": "closed"})
    metrics.attempt_ended("test", "completed", None, 0.5)
    text = _render(metrics)
    assert set(families(text)) >= WORKER
    promtool_accepts(text)
