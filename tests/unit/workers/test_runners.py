"""The runner registry (extension hook) and the built-in ``test`` runner."""

from __future__ import annotations

import asyncio
import sys
import types
import uuid
from pathlib import Path
from typing import Any

import pytest

from bi_engine.domain.result import Analysis
from bi_engine.settings import Settings
from workers import runners
from workers.job import AnalysisOutcome, JobContext, ProgressSink
from workers.retry import InvalidJobData, TransientJobError, UnsupportedType

pytestmark = pytest.mark.unit


class Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[int, str, str, str | None]] = []

    async def progress(
        self, percent: int, step: str, message: str, agent: str | None = None
    ) -> None:
        self.calls.append((percent, step, message, agent))


def _context(data: dict[str, Any], attempt: int = 1, abort: bool = False) -> JobContext:
    async def should_abort() -> bool:
        return abort

    return JobContext(
        job_id=uuid.uuid4(),
        type="test",
        data=data,
        options={},
        sensitivity="normal",
        attempt=attempt,
        settings=Settings(),
        should_abort=should_abort,
    )


async def _nothing(ctx: JobContext, sink: ProgressSink) -> AnalysisOutcome:
    return AnalysisOutcome(result={})


async def test_an_extension_registers_its_runners_on_first_need(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads: list[str] = []
    module = types.ModuleType("bi_test_extension")

    def register(registry: runners.RunnerRegistry) -> None:
        loads.append("loaded")
        registry.register("trend_analysis", _nothing)

    module.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bi_test_extension", module)
    registry = runners.default_registry(extensions=("bi_test_extension",))

    assert await registry.resolve("test") is runners.run_test
    assert loads == []  # ``test`` needs no extension
    assert await registry.resolve("trend_analysis") is _nothing
    with pytest.raises(UnsupportedType):
        await registry.resolve("process_analysis")
    assert loads == ["loaded"]
    assert list(registry) == ["test", "trend_analysis"]


async def test_an_extension_that_is_not_installed_leaves_its_types_unsupported() -> None:
    registry = runners.default_registry(extensions=("workers.no_such_extension",))
    with pytest.raises(UnsupportedType, match="'process_analysis' is not available"):
        await registry.resolve("process_analysis")


async def test_an_extension_with_a_broken_import_fails_loudly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "bi_broken_extension.py").write_text("import bi_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = runners.default_registry(extensions=("bi_broken_extension",))
    with pytest.raises(ModuleNotFoundError, match="bi_missing_dependency"):
        await registry.resolve("process_analysis")
    assert await registry.resolve("test") is runners.run_test


async def test_the_test_runner_reports_progress_and_a_small_valid_result() -> None:
    sink = Sink()
    outcome = await runners.run_test(_context({"sleep_s": 1.05, "a": 1}), sink)
    steps = [call[1] for call in sink.calls]
    assert steps == ["Preparing your data", "Analysing", "Writing the report"]
    assert sink.calls[1][2] == "Working: 1 s of 1.05 s"
    analysis = Analysis.model_validate(outcome.result["analysis"])
    assert {k.name: k.value for k in analysis.kpis} == {
        "duration_seconds": 1.05,
        "attempt": 1,
        "input_fields": 2,
    }
    assert outcome.headline == analysis.summary.headline
    assert outcome.report_markdown == outcome.result["report_markdown"]
    assert set(outcome.result) == {"analysis", "report_markdown", "team", "llm"}


async def test_the_test_runner_fails_its_first_attempts_when_asked() -> None:
    with pytest.raises(TransientJobError, match="attempt 2 of 2"):
        await runners.run_test(_context({"fail_attempts": 2}, attempt=2), Sink())
    outcome = await runners.run_test(_context({"fail_attempts": 2}, attempt=3), Sink())
    assert outcome.result["analysis"]["kpis"][1]["value"] == 3


async def test_the_test_runner_stops_when_asked_to_abort() -> None:
    with pytest.raises(asyncio.CancelledError):
        await runners.run_test(_context({"sleep_s": 60}, abort=True), Sink())


@pytest.mark.parametrize(
    "data",
    [
        {"sleep_s": "soon"},
        {"sleep_s": 601},
        {"sleep_s": -1},
        {"sleep_s": True},
        {"fail_attempts": 1.5},
        {"fail_attempts": -1},
    ],
)
async def test_bad_test_options_are_invalid_data(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidJobData) as caught:
        await runners.run_test(_context(data), Sink())
    assert caught.value.details[0]["loc"][0] == "data"
