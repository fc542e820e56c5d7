"""The AnalysisRunner of every analysis type: analytics, then Your AI Team, then the report.

    analyze (numbers) ──> crew of the type (tools over the numbers, words from the chain)
                      ──> grounding check ──> report + result (CONTRACT section 5)

The crew runs in a thread (crewai is synchronous); its events come back to the event loop as
progress, each finished Processing Task is saved (a retry resumes after it) and the abort
request is checked between tasks and before every LLM call. Bad data raises the analytics'
``InvalidData`` (no retry); LLM failures never fail a job: the chain ends in ``pattern``.

The worker loads this module through ``workers.runners.EXTENSIONS``: :func:`register`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final

from crewai.events.base_events import reset_emission_counter
from crewai.tasks.task_output import TaskOutput

from bi_engine.domain.result import Summary
from bi_engine.domain.vocabulary import TEAM_DISPLAY
from bi_engine.logging import get_logger
from workers.analytics import analyze
from workers.analytics.report import AnalyticsReport
from workers.crew import agents, events, teams
from workers.crew import tools as crew_tools
from workers.crew.assignments import ASSIGNMENTS
from workers.crew.errors import Aborted
from workers.crew.llm import AbortSignal, ChainLLM, PatternBrain
from workers.crew.store import Store
from workers.job import AnalysisOutcome, JobContext, ProgressSink
from workers.narration import chain, narrative
from workers.narration.accounting import CallRecord, Ledger, totals_of
from workers.narration.breaker import BreakerBoard
from workers.narration.pattern import PatternNarrator, count_words

ANALYSIS_TYPES: Final = (
    "process_analysis",
    "data_interpretation",
    "trend_analysis",
    "optimization_review",
    "custom_analysis",
)
ABORT_POLL_S: Final = 0.5
WATCH_TASK_NAME: Final = "bi-crew-abort-watch"
"""The task that polls for an abort while a crew runs (named, to tell it apart)."""
SAVE_TIMEOUT_S: Final = 30.0

log = get_logger("bi.crew")

OnCalls = Callable[[Sequence[CallRecord]], None]


def register(registry: Any) -> None:
    """Add the AI Team runner for every analysis type (``workers.runners`` extension hook)."""
    runner = CrewRunner()
    for analysis_type in ANALYSIS_TYPES:
        registry.register(analysis_type, runner)


class CrewRunner:
    """One per worker process: the circuit breakers are shared by all its jobs."""

    def __init__(
        self,
        *,
        breakers: BreakerBoard | None = None,
        base_urls: Mapping[str, str] | None = None,
        transport: chain.Transport | None = None,
        on_calls: OnCalls | None = None,
    ) -> None:
        self.breakers = breakers or BreakerBoard()
        self.base_urls = dict(base_urls or {})
        self.transport = transport or chain.litellm_transport
        self.on_calls = on_calls
        events.install()

    async def __call__(self, ctx: JobContext, sink: ProgressSink) -> AnalysisOutcome:
        return await CrewJob(self, ctx, sink).run()


class CrewJob:
    """One attempt of one analysis by Your AI Team."""

    def __init__(self, runner: CrewRunner, ctx: JobContext, sink: ProgressSink) -> None:
        self.runner = runner
        self.ctx = ctx
        self.sink = sink
        self.settings = ctx.settings
        self.store = Store(ctx.settings, ctx.extras.get("pool"))
        self.ledger = Ledger()
        self.abort = AbortSignal()
        self.outputs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task_started = datetime.now(UTC)
        self._mark = 0
        self._progress_error: BaseException | None = None

    # ------------------------------------------------------------------ the attempt

    async def run(self) -> AnalysisOutcome:
        await self.sink.progress(3, "Reading your data", f"{TEAM_DISPLAY} is reading your data...")
        report = await asyncio.to_thread(
            analyze, self.ctx.type, self.ctx.data, metrics_focus=self._focus()
        )
        await self._stop_if_asked()
        found = count_words(len(report.analysis.findings), "finding")
        await self.sink.progress(
            12, "Computing the figures", f"{TEAM_DISPLAY} computed the figures: {found} so far."
        )
        try:
            return await self._with_team(report)
        except Aborted:
            raise asyncio.CancelledError from None  # the pipeline knows why: cancel or deadline
        finally:
            await self._save_calls()

    async def _with_team(self, report: AnalyticsReport) -> AnalysisOutcome:
        spend = await self.store.budget()
        plan = chain.plan_chain(
            self.settings,
            sensitivity=self.ctx.sensitivity,
            over_budget=spend.exceeded,
            base_urls=self.runner.base_urls,
        )
        team = teams.plan_for(self.ctx.type, report.facts)
        saved = await self.store.completed_tasks(self.ctx.job_id)
        self.outputs = {k: v for k, v in saved.items() if k in team.keys and v.get("text")}
        narrator = PatternNarrator(
            report.analysis,
            analysis_type=self.ctx.type,
            facts=report.facts,
            question=self._question(),
        )
        session = chain.ChainSession(
            plan,
            breakers=self.runner.breakers,
            ledger=self.ledger,
            timeout_s=self.settings.llm_timeout_s,
            transport=self.runner.transport,
        )
        brain = PatternBrain(
            narrator,
            roles={s.role: s.key for s in agents.SPECS.values()},
            fallback=team.fallback(),
        )
        crew = teams.build_crew(
            team,
            llm_for=lambda _key: ChainLLM.over(session, brain, self.abort),
            tools=crew_tools.build(report, self.ctx.data, self.ctx.type),
            brief=self._brief(narrator.label),
            analysis=report.analysis,
            done={k: str(v["text"]) for k, v in self.outputs.items()},
            on_task_done=task_done,
        )
        if crew is not None:
            await self._kickoff(crew, [k for k in team.keys if k not in self.outputs])
        return await self._outcome(report, team, plan, narrator)

    # ------------------------------------------------------------------ the crew

    async def _kickoff(self, crew: Any, keys: list[str]) -> None:
        self._loop = asyncio.get_running_loop()
        updates: asyncio.Queue[events.Update | None] = asyncio.Queue()
        tracker = events.JobTracker(
            events.ProgressPlan(keys), lambda u: self._hop(updates.put_nowait, u)
        )
        pump = asyncio.create_task(self._pump(updates))
        watcher = asyncio.create_task(self._watch(), name=WATCH_TASK_NAME)
        token = events.CURRENT.set(tracker)
        job_token = _CURRENT_JOB.set(self)
        self._task_started = datetime.now(UTC)
        self._mark = self.ledger.mark()
        try:
            await asyncio.to_thread(self._kickoff_in_thread, crew)
        except asyncio.CancelledError:
            self.abort.set("cancelled")  # the crew thread stops at its next LLM call
            raise
        finally:
            _CURRENT_JOB.reset(job_token)
            events.CURRENT.reset(token)
            watcher.cancel()
            updates.put_nowait(None)
            await asyncio.gather(pump, watcher, return_exceptions=True)
        if self._progress_error is not None:
            raise self._progress_error

    @staticmethod
    def _kickoff_in_thread(crew: Any) -> Any:
        reset_emission_counter()  # one emission sequence for this job's events
        return crew.kickoff()

    def _hop(self, put: Callable[[Any], None], item: Any) -> None:
        """From a crewai thread into the event loop, in order."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(put, item)

    async def _pump(self, updates: asyncio.Queue[events.Update | None]) -> None:
        while (update := await updates.get()) is not None:
            try:
                await self.sink.progress(update.percent, update.step, update.message, update.agent)
            except Exception as exc:  # the attempt lost its row: stop the crew
                self._progress_error = exc
                self.abort.set("lost")

    async def _watch(self) -> None:
        while not self.abort.is_set():
            await asyncio.sleep(ABORT_POLL_S)
            if await self.ctx.should_abort():
                self.abort.set("cancelled")

    def on_task_done(self, output: TaskOutput) -> None:
        """In the crew's thread, after each Processing Task: save it (even when the job is
        being cancelled: a retry resumes after it), then stop here if an abort came."""
        key = str(output.name or "")
        text = str(output.raw or "")
        writer = self.ledger.last_writer() or chain.PATTERN
        with self._lock:
            self.outputs[key] = {"text": text, "provider": writer}
        if self._loop is not None and self.abort.reason != "lost":
            try:
                future = asyncio.run_coroutine_threadsafe(
                    self._task_saved(key, text, writer), self._loop
                )
                future.result(timeout=SAVE_TIMEOUT_S)
            except (RuntimeError, concurrent.futures.TimeoutError) as exc:  # loop gone or stuck
                log.warning("crew_task_not_saved", job_id=str(self.ctx.job_id), error=str(exc))
        self.abort.check()

    async def _task_saved(self, key: str, text: str, writer: str) -> None:
        finished = datetime.now(UTC)
        calls = self.ledger.since(self._mark)
        totals = totals_of(calls)
        fresh = self.ledger.drain()
        assignment = ASSIGNMENTS.get(key)
        try:
            await self.store.task_finished(
                job_id=self.ctx.job_id,
                attempt=self.ctx.attempt,
                agent=agents.SPECS[assignment.agent].role if assignment else key,
                task=key,
                status="completed",
                started_at=self._task_started,
                finished_at=finished,
                output={"text": text, "provider": writer},
                calls=fresh,
                tokens=(totals.prompt_tokens, totals.completion_tokens),
            )
        except Exception as exc:  # resuming is an optimisation: never fail the job for it
            log.warning(
                "crew_task_not_saved", job_id=str(self.ctx.job_id), task=key, error=str(exc)
            )
        self._task_started = finished
        self._mark = self.ledger.mark()
        if await self.ctx.should_abort():
            self.abort.set("cancelled")

    async def _stop_if_asked(self) -> None:
        if await self.ctx.should_abort():
            raise asyncio.CancelledError

    async def _save_calls(self) -> None:
        calls = self.ledger.drain()
        if self.runner.on_calls is not None:
            self.runner.on_calls(self.ledger.records)
        hook = self.ctx.extras.get("llm_calls")
        if callable(hook):
            hook(self.ledger.records)
        try:
            await self.store.save_calls(self.ctx.job_id, calls)
        except Exception as exc:
            log.warning("llm_calls_not_saved", job_id=str(self.ctx.job_id), error=str(exc))

    # ------------------------------------------------------------------ the result

    async def _outcome(
        self,
        report: AnalyticsReport,
        team: teams.TeamPlan,
        plan: chain.ChainPlan,
        narrator: PatternNarrator,
    ) -> AnalysisOutcome:
        await self.sink.progress(
            96, "Writing the report", f"{TEAM_DISPLAY} is finishing the report..."
        )
        texts = {k: str(v.get("text") or "") for k, v in self.outputs.items()}
        notes = [  # the pattern's own task answers repeat the tables: only models' words
            (agents.SPECS[ASSIGNMENTS[k].agent].display, ASSIGNMENTS[k].title, texts[k])
            for k in team.analysis
            if texts.get(k) and self.outputs[k].get("provider") != chain.PATTERN
        ]
        story = narrative.assemble(report.analysis, texts, narrator, notes=notes)
        writer = self._writer()
        expected = chain.plan_chain(
            self.settings, sensitivity=self.ctx.sensitivity, base_urls=self.runner.base_urls
        ).preferred
        await self._save_calls()
        tokens = await self._tokens()
        analysis = report.analysis.model_copy(
            update={"summary": Summary(headline=story.headline, executive_summary=story.summary)}
        )
        markdown = story.markdown(
            narrator.label, analysis, self._team_names(team), self._question()
        )
        result = {
            "analysis": analysis.model_dump(mode="json"),
            "report_markdown": markdown,
            "team": self._team(team),
            "llm": {
                "provider": writer,
                "tried": self.ledger.tried(),
                "tokens": {"prompt": tokens[0], "completion": tokens[1]},
                "cost_eur": round(tokens[2], 6),
                "degraded": writer != expected,
                "skipped": self.ledger.skipped(),
            },
            "quality": story.quality(),
        }
        return AnalysisOutcome(
            result=result,
            report_markdown=markdown,
            headline=story.headline,
            provider=writer,
            degraded=writer != expected,
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            cost_eur=round(tokens[2], 6),
        )

    def _writer(self) -> str:
        """Who wrote the report's words: the provider of the last Processing Task."""
        for key in reversed(list(self.outputs)):
            provider = self.outputs[key].get("provider")
            if provider:
                return str(provider)
        return self.ledger.last_writer() or chain.PATTERN

    async def _tokens(self) -> tuple[int, int, float]:
        totals = await self._db_totals()
        if totals is not None:
            return totals
        local = self.ledger.totals()
        return local.prompt_tokens, local.completion_tokens, local.cost_eur

    async def _db_totals(self) -> tuple[int, int, float] | None:
        try:
            row = await self.store.job_totals(self.ctx.job_id)
        except Exception as exc:
            log.warning("llm_totals_unavailable", job_id=str(self.ctx.job_id), error=str(exc))
            return None
        if row is None:
            return None
        return int(row["prompt_tokens"]), int(row["completion_tokens"]), float(row["cost_eur"])

    def _team(self, team: teams.TeamPlan) -> list[dict[str, Any]]:
        counts: dict[str, int] = {}
        for key in team.keys:
            agent = ASSIGNMENTS[key].agent
            counts[agent] = counts.get(agent, 0) + 1
        members = [
            {"agent": agents.SPECS[k].role, "display": agents.SPECS[k].display, "tasks": n}
            for k, n in counts.items()
        ]
        if team.hierarchical:
            lead = agents.SPECS[agents.LEAD_KEY]
            members.insert(
                0, {"agent": lead.role, "display": lead.display, "tasks": len(team.keys)}
            )
        return members

    def _team_names(self, team: teams.TeamPlan) -> list[str]:
        return [agents.SPECS[k].display for k in team.members]

    # ------------------------------------------------------------------ options

    def _template(self) -> Mapping[str, Any]:
        """The saved template of a custom analysis, as the pipeline resolved it (or none)."""
        template = self.ctx.options.get("template")
        return template if isinstance(template, Mapping) else {}

    def _option(self, name: str) -> Any:
        """A submission option, else the template's setting of the same name."""
        value = self.ctx.options.get(name)
        if value in (None, "", []):
            config = self._template().get("config")
            value = config.get(name) if isinstance(config, Mapping) else None
        return value

    def _focus(self) -> list[str] | None:
        focus = self._option("metrics_focus")
        if isinstance(focus, str):
            return [focus]
        return [str(f) for f in focus] if isinstance(focus, list) else None

    def _question(self) -> str | None:
        question = self.ctx.options.get("question") or self.ctx.data.get("question")
        question = question or self._template().get("question")
        return str(question).strip() if question else None

    def _brief(self, label: str) -> teams.Brief:
        name = _text(self._template().get("name"))
        return teams.Brief(
            label=f"{label} ({name})" if name else label,
            context=_text(self._option("context")),
            time_period=_text(self._option("time_period")),
            metrics_focus=tuple(self._focus() or ()),
            question=self._question(),
        )


_CURRENT_JOB: ContextVar[CrewJob | None] = ContextVar("bi_crew_job", default=None)


def task_done(output: TaskOutput) -> None:
    """crewai's task callback (a module-level function: crewai cannot checkpoint methods)."""
    job = _CURRENT_JOB.get()
    if job is not None:
        job.on_task_done(output)


def _text(value: Any) -> str | None:
    return str(value).strip() if value not in (None, "") else None
