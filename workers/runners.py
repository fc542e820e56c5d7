"""Which AnalysisRunner runs which analysis type, and the built-in ``test`` runner.

The registry starts with ``test``. Analysis runners arrive through extension modules: each
module in :data:`EXTENSIONS` defines ``register(registry)`` and adds its runners there.
Extensions load on the first job that needs a type the registry does not have yet, in a
thread (importing crewai takes seconds), so a worker starts claiming at once and only the
first analysis pays the import. A type nobody registered fails with ``unsupported_type``.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, Final

from bi_engine.domain.vocabulary import TEAM_DISPLAY
from bi_engine.logging import get_logger
from workers.job import AnalysisOutcome, AnalysisRunner, JobContext, ProgressSink
from workers.retry import InvalidJobData, TransientJobError, UnsupportedType

EXTENSIONS: Final = ("workers.crew.runner",)
"""Modules that add analysis runners when present: ``register(registry: RunnerRegistry)``."""

MAX_SLEEP_S: Final = 600.0
SLICE_S: Final = 0.1

log = get_logger("bi.worker")


class RunnerRegistry:
    """Analysis type -> runner. Built by the worker's composition root, passed down."""

    def __init__(self, extensions: Iterable[str] = ()) -> None:
        self._runners: dict[str, AnalysisRunner] = {}
        self._extensions = tuple(extensions)
        self._loaded = not self._extensions
        self._lock = threading.Lock()

    def register(self, analysis_type: str, runner: AnalysisRunner) -> None:
        self._runners[analysis_type] = runner

    def get(self, analysis_type: str) -> AnalysisRunner:
        try:
            return self._runners[analysis_type]
        except KeyError:
            raise UnsupportedType(
                f"The analysis type {analysis_type!r} is not available on this worker yet."
            ) from None

    async def resolve(self, analysis_type: str) -> AnalysisRunner:
        """The runner for ``analysis_type``, loading the extensions first if need be."""
        if analysis_type not in self._runners and not self._loaded:
            await asyncio.to_thread(self.load_extensions)
        return self.get(analysis_type)

    def load_extensions(self) -> None:
        """Import each installed extension and let it register its runners (once)."""
        with self._lock:
            if self._loaded:
                return
            started = time.monotonic()
            for name in self._extensions:
                module = _import_if_installed(name)
                if module is not None:
                    module.register(self)
            self._loaded = True
        log.info(
            "runner_extensions_loaded",
            types=list(self),
            seconds=round(time.monotonic() - started, 3),
        )

    def __contains__(self, analysis_type: object) -> bool:
        return analysis_type in self._runners

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._runners))


def default_registry(extensions: Iterable[str] = EXTENSIONS) -> RunnerRegistry:
    """``test`` now, plus whatever the installed extension modules register when needed."""
    registry = RunnerRegistry(extensions)
    registry.register("test", run_test)
    return registry


def _import_if_installed(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            return None  # the extension is not installed: its types stay unsupported
        raise


# --------------------------------------------------------------------------- test


async def run_test(ctx: JobContext, sink: ProgressSink) -> AnalysisOutcome:
    """A smoke test: progress, an optional duration, optional transient failures."""
    sleep_s, fail_attempts = _test_options(ctx.data)
    await sink.progress(5, "Preparing your data", f"Reading {len(ctx.data)} input fields")
    if ctx.attempt <= fail_attempts:
        raise TransientJobError(
            f"Simulated temporary failure on attempt {ctx.attempt} of {fail_attempts} planned."
        )
    await _work(ctx, sink, sleep_s)
    await sink.progress(95, "Writing the report", "Your AI Team is writing the summary")
    return _test_outcome(ctx, sleep_s)


async def _work(ctx: JobContext, sink: ProgressSink, sleep_s: float) -> None:
    """Last ``sleep_s`` seconds in short slices, checking for an abort between them.

    Progress is reported once per second of work: enough for a live progress bar.
    """
    start = time.monotonic()
    deadline = start + sleep_s
    reported = 0
    while (left := deadline - time.monotonic()) > 0:
        if await ctx.should_abort():
            raise asyncio.CancelledError  # the pipeline knows why: cancel or deadline
        await asyncio.sleep(min(SLICE_S, left))
        done = time.monotonic() - start
        if int(done) > reported:
            reported = int(done)
            percent = 10 + int(80 * min(1.0, done / sleep_s))
            message = f"Working: {reported} s of {sleep_s:g} s"
            await sink.progress(percent, "Analysing", message, TEAM_DISPLAY)


def _test_options(data: dict[str, Any]) -> tuple[float, int]:
    sleep_s = data.get("sleep_s", 0)
    fail_attempts = data.get("fail_attempts", 0)
    problems = []
    if isinstance(sleep_s, bool) or not isinstance(sleep_s, int | float):
        problems.append({"loc": ["data", "sleep_s"], "msg": "must be a number of seconds"})
    elif not 0 <= sleep_s <= MAX_SLEEP_S:
        problems.append({"loc": ["data", "sleep_s"], "msg": "must be between 0 and 600"})
    if isinstance(fail_attempts, bool) or not isinstance(fail_attempts, int) or fail_attempts < 0:
        problems.append({"loc": ["data", "fail_attempts"], "msg": "must be a whole number >= 0"})
    if problems:
        first = problems[0]
        raise InvalidJobData(f"{'.'.join(first['loc'])}: {first['msg']}", details=problems)
    return float(sleep_s), int(fail_attempts)


def _test_outcome(ctx: JobContext, sleep_s: float) -> AnalysisOutcome:
    """The contract's result shape (``data.analysis`` as in ``bi_engine.domain.result``)."""
    headline = "Smoke test completed: the pipeline works end to end"
    fields = len(ctx.data)
    summary = (
        f"The test job ran on attempt {ctx.attempt}, worked for {sleep_s:g} s "
        f"and read {fields} input fields. No analysis was performed."
    )
    analysis = {
        "summary": {"headline": headline, "executive_summary": summary},
        "kpis": [
            _kpi("duration_seconds", sleep_s, "seconds", "Time worked"),
            _kpi("attempt", ctx.attempt, "", "Attempt that completed"),
            _kpi("input_fields", fields, "", "Input fields read"),
        ],
        "findings": [],
        "recommendations": [],
        "roadmap": [],
    }
    report = (
        f"# Smoke test\n\n{headline}.\n\n"
        f"- Attempt: {ctx.attempt}\n- Time worked: {sleep_s:g} s\n"
        f"- Input fields read: {fields}\n"
    )
    result = {
        "analysis": analysis,
        "report_markdown": report,
        "team": [],
        "llm": {
            "provider": "none",
            "tried": [],
            "tokens": {"prompt": 0, "completion": 0},
            "cost_eur": 0.0,
        },
    }
    return AnalysisOutcome(
        result=result, report_markdown=report, headline=headline, provider="none"
    )


def _kpi(name: str, value: float, unit: str, label: str) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": unit, "label": label, "formula": None}
