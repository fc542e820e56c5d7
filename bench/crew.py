"""Your AI Team offline: full analyses of the bundled samples against the analytics alone.

For each bundled sample (and a custom analysis with a question), in the same run:

- baseline: ``workers.analytics.analyze`` only (the numbers);
- full: the AI Team runner with the pattern LLM — analytics, the crew of the type (every
  Processing Task, tool calls and answers through crewai), grounding and the report — with
  no network and no database.

Rounds alternate baseline/full; medians are printed with the crew's overhead (full minus
baseline), its LLM calls, and a concurrent round (all types at once, as one worker would).

    python bench/crew.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import workers.crew  # noqa: F401  (prepares crewai's environment before it loads)
from bi_engine.logging import configure_logging
from bi_engine.settings import Settings
from workers.analytics import analyze
from workers.crew.runner import ANALYSIS_TYPES, CrewRunner
from workers.job import JobContext
from workers.narration.accounting import CallRecord

SAMPLES = Path(__file__).resolve().parents[1] / "bi_engine" / "samples"
SAMPLE_OF = {
    "process_analysis": "process_log",
    "optimization_review": "n8n_executions",
    "trend_analysis": "sales_series",
    "data_interpretation": "customer_dataset",
    "custom_analysis": "process_log",
}


def body_for(kind: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((SAMPLES / f"{SAMPLE_OF[kind]}.json").read_text())
    if kind == "custom_analysis":
        body["data"] = {**body["data"], "question": "Where do invoices wait?"}
    return body


class Sink:
    async def progress(
        self, percent: int, step: str, message: str, agent: str | None = None
    ) -> None:
        """Progress goes nowhere: the benchmark measures the analysis."""


async def _never() -> bool:
    return False


def _context(kind: str) -> JobContext:
    body = body_for(kind)
    return JobContext(
        job_id=uuid.uuid4(),
        type=kind,
        data=body["data"],
        options={"context": body.get("context")},
        sensitivity="normal",
        attempt=1,
        settings=Settings(llm_chain="pattern"),
        should_abort=_never,
    )


class Calls:
    def __init__(self) -> None:
        self.last = 0

    def __call__(self, records: Sequence[CallRecord]) -> None:
        self.last = len(records)


def _baseline(kind: str) -> float:
    data = body_for(kind)["data"]
    started = time.perf_counter()
    analyze(kind, data)
    return time.perf_counter() - started


async def _full(runner: CrewRunner, kind: str) -> float:
    ctx = _context(kind)
    started = time.perf_counter()
    await runner(ctx, Sink())
    return time.perf_counter() - started


async def _concurrent(runner: CrewRunner) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(runner(_context(k), Sink()) for k in ANALYSIS_TYPES))
    return time.perf_counter() - started


def _ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def main(rounds: int) -> None:
    calls = Calls()
    runner = CrewRunner(on_calls=calls)
    for kind in ANALYSIS_TYPES:  # warm-up: imports, caches, first crew
        _baseline(kind)
        await _full(runner, kind)
    rows: list[dict[str, Any]] = []
    for kind in ANALYSIS_TYPES:
        base: list[float] = []
        full: list[float] = []
        for _ in range(rounds):
            base.append(_baseline(kind))
            full.append(await _full(runner, kind))
        rows.append({"type": kind, "analytics": _ms(base), "full": _ms(full), "calls": calls.last})
    together = [await _concurrent(runner) for _ in range(max(1, rounds // 2))]
    print(f"AI Team offline (pattern LLM), median of {rounds} rounds, same-run baseline")
    print(f"{'type':<22}{'analytics ms':>14}{'full ms':>10}{'crew ms':>10}{'LLM calls':>11}")
    for r in rows:
        overhead = r["full"] - r["analytics"]
        print(
            f"{r['type']:<22}{r['analytics']:>14.1f}{r['full']:>10.1f}"
            f"{overhead:>10.1f}{r['calls']:>11}"
        )
    serial = sum(r["full"] for r in rows)
    print(
        f"all {len(rows)} types at once: {_ms(together):.1f} ms "
        f"(one after another: {serial:.1f} ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    configure_logging(Settings(log_level="WARNING"))
    asyncio.run(main(args.rounds))
