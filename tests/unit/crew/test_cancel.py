"""Cancellation mid-crew: the abort request is seen between Processing Tasks and before LLM
calls, the crew thread stops, and the runner ends with the pipeline's cancellation."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from crewai.events import crewai_event_bus
from crewai.events.types.llm_events import LLMCallStartedEvent

from tests.unit.crew.support import AbortSwitch, RecordingSink, context
from workers.crew.runner import CrewRunner

pytestmark = pytest.mark.unit


class LLMCalls:
    """Counts LLM calls started anywhere in the process (crewai's event bus)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, source: object, event: object) -> None:
        with self._lock:
            self.count += 1

    def __enter__(self) -> LLMCalls:
        crewai_event_bus.on(LLMCallStartedEvent)(self)
        return self

    def __exit__(self, *exc: object) -> None:
        crewai_event_bus.off(LLMCallStartedEvent, self)


async def test_abort_between_tasks_stops_the_crew() -> None:
    switch = AbortSwitch(after=3)  # after analytics, then after each finished task
    sink = RecordingSink()
    ctx = context("data_interpretation", should_abort=switch)
    with pytest.raises(asyncio.CancelledError):
        await CrewRunner()(ctx, sink)
    steps = [step for _, step, _, _ in sink.updates]
    assert "Assess the business impact" in steps, "the second task ran"
    assert "Write the executive summary" not in steps, "the third never started"
    seen = len(sink.updates)
    await asyncio.sleep(0.3)
    assert len(sink.updates) == seen, "nothing runs after the abort"


async def test_abort_during_a_task_stops_at_the_next_llm_call() -> None:
    class Late(AbortSwitch):
        t0 = time.monotonic()

        async def __call__(self) -> bool:
            self.calls += 1
            return self.calls > 1 and time.monotonic() > self.t0 + 0.05

    switch = Late()
    sink = RecordingSink()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await CrewRunner()(context("process_analysis", should_abort=switch), sink)
    assert time.monotonic() - started < 5
    assert max(sink.percents) < 95


async def test_cancelling_the_runner_task_stops_the_crew_thread() -> None:
    sink = RecordingSink()
    runner = CrewRunner()
    with LLMCalls() as calls:
        task = asyncio.ensure_future(runner(context("process_analysis"), sink))
        while not any("calculating your KPIs" in m for _, _, m, _ in sink.updates):
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.2)
        stopped_at = calls.count
        await asyncio.sleep(0.4)
        assert calls.count == stopped_at, "no LLM call after the cancellation"
    assert 0 < stopped_at < 20, "a whole process analysis makes about thirty"
