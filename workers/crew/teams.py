"""The AI Team for each analysis type, and the crew that runs its Processing Tasks.

``process_analysis`` is hierarchical, led by the Business Analyst; the other types run
their tasks in order. The Report team finishes every crew. Tasks already completed in an
earlier attempt are left out, and their saved outputs are handed to the remaining tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from crewai import Crew, Process, Task
from crewai.llms.base_llm import BaseLLM
from crewai.tasks.task_output import TaskOutput
from crewai.tools import BaseTool

from bi_engine.domain.result import Analysis
from workers.crew import agents
from workers.crew.assignments import ASSIGNMENTS, REPORT_TEAM, Assignment
from workers.crew.tools import compact_json

ANALYSIS_TASKS: Final = {
    "process_analysis": (
        "analyse_current_performance",
        "identify_optimization_opportunities",
        "generate_implementation_roadmap",
    ),
    "data_interpretation": ("interpret_data", "assess_business_impact"),
    "trend_analysis": ("identify_trends", "assess_business_impact"),
    "optimization_review": (
        "map_process_performance",
        "recommend_optimizations",
        "generate_implementation_roadmap",
    ),
}
HIERARCHICAL: Final = frozenset({"process_analysis"})


@dataclass(frozen=True, slots=True)
class TeamPlan:
    analysis_type: str
    analysis: tuple[str, ...]
    hierarchical: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        return self.analysis + REPORT_TEAM

    @property
    def members(self) -> tuple[str, ...]:
        seen: list[str] = []
        for key in self.keys:
            agent = ASSIGNMENTS[key].agent
            if agent not in seen:
                seen.append(agent)
        return tuple(seen)

    def fallback(self) -> dict[str, str]:
        """agent key -> its first assignment (for tasks the pattern LLM cannot recognise)."""
        out: dict[str, str] = {}
        for key in self.keys:
            out.setdefault(ASSIGNMENTS[key].agent, key)
        return out


def plan_for(analysis_type: str, facts: Mapping[str, Any]) -> TeamPlan:
    """The team of one analysis type; a custom analysis takes the tasks its data supports."""
    if analysis_type in ANALYSIS_TASKS:
        return TeamPlan(analysis_type, ANALYSIS_TASKS[analysis_type], analysis_type in HIERARCHICAL)
    return TeamPlan(analysis_type, (*_custom_tasks(facts), "answer_question"))


def _custom_tasks(facts: Mapping[str, Any]) -> tuple[str, ...]:
    if facts.get("process"):
        return ("analyse_current_performance", "identify_optimization_opportunities")
    if facts.get("series"):
        return ("identify_trends",)
    if facts.get("table"):
        return ("interpret_data",)
    return ("analyse_current_performance",)


@dataclass(frozen=True)
class Brief:
    """What every Processing Task is told about the job."""

    label: str
    context: str | None = None
    time_period: str | None = None
    metrics_focus: tuple[str, ...] = ()
    question: str | None = None

    def text(self) -> str:
        lines = [f"Analysis: {self.label}."]
        if self.question:
            lines.append(f"Question to answer: {self.question}")
        if self.context:
            lines.append(f"Business context: {self.context}")
        if self.time_period:
            lines.append(f"Period analysed: {self.time_period}")
        if self.metrics_focus:
            lines.append(f"Metrics to focus on: {', '.join(self.metrics_focus)}")
        return "\n".join(lines)


def facts_sheet(analysis: Analysis, limit: int = 8) -> str:
    """The computed facts the writers may quote, as compact JSON."""
    sheet = {
        "kpis": [
            {"label": k.label or k.name, "value": k.value, "unit": k.unit}
            for k in analysis.kpis[: limit * 2]
        ],
        "findings": [
            {"title": f.title, "severity": f.severity, "detail": f.detail, "evidence": f.evidence}
            for f in analysis.findings[:limit]
        ],
        "recommendations": [
            {
                "title": r.title,
                "impact": r.impact,
                "effort": r.effort,
                "estimated_savings": r.estimated_savings,
            }
            for r in analysis.recommendations[:limit]
        ],
        "roadmap": [{"phase": p.phase, "items": p.items} for p in analysis.roadmap],
    }
    return compact_json(sheet, 8_000)


_REPORT_CONTEXT: Final = {
    "executive_summary": None,
    "technical_notes": None,
    "business_translation": ("executive_summary",),
    "quality_review": ("executive_summary", "technical_notes", "business_translation"),
}
"""Report tasks' context: None = every analysis task; a tuple = those report tasks."""


def build_crew(
    plan: TeamPlan,
    *,
    llm_for: Callable[[str], BaseLLM],
    tools: Mapping[str, BaseTool],
    brief: Brief,
    analysis: Analysis,
    done: Mapping[str, str],
    on_task_done: Callable[[TaskOutput], None],
) -> Crew | None:
    """The crew for the tasks of ``plan`` not in ``done`` (None when nothing is left)."""
    remaining = [k for k in plan.keys if k not in done]
    if not remaining:
        return None
    members = agents.build(plan.members, llm_for=llm_for, tools=tools)
    sheet = facts_sheet(analysis)
    tasks: dict[str, Task] = {}
    for key in remaining:
        assignment = ASSIGNMENTS[key]
        earlier = _context_keys(plan, key)
        description = _description(
            assignment, brief, sheet, {k: done[k] for k in earlier if k in done}
        )
        tasks[key] = Task(
            name=key,
            description=description,
            expected_output=assignment.expected_output,
            agent=None if plan.hierarchical else members[assignment.agent],
            context=[tasks[k] for k in earlier if k in tasks] or None,
            callback=on_task_done,
        )
    crew_agents = [members[a] for a in plan.members]
    if plan.hierarchical:
        return Crew(
            agents=crew_agents,
            tasks=list(tasks.values()),
            process=Process.hierarchical,
            manager_agent=agents.build_lead(llm_for(agents.LEAD_KEY)),
            verbose=False,
            memory=False,
        )
    return Crew(
        agents=crew_agents,
        tasks=list(tasks.values()),
        process=Process.sequential,
        verbose=False,
        memory=False,
    )


def _context_keys(plan: TeamPlan, key: str) -> tuple[str, ...]:
    if key in plan.analysis:
        return plan.analysis[: plan.analysis.index(key)]
    wanted = _REPORT_CONTEXT.get(key)
    return plan.analysis if wanted is None else wanted


def _description(
    assignment: Assignment, brief: Brief, sheet: str, earlier: Mapping[str, str]
) -> str:
    parts = [f"Processing Task: {assignment.title} {assignment.marker()}", assignment.brief]
    parts.append(brief.text())
    if assignment.report or assignment.key in ("answer_question",):
        parts.append(f"Computed facts (the only numbers you may quote): {sheet}")
    if earlier:
        done = "\n\n".join(f"{ASSIGNMENTS[k].title}:\n{text}" for k, text in earlier.items())
        parts.append(f"Work Your AI Team already completed:\n{done}")
    return "\n\n".join(parts)


def outputs_of(tasks_output: Sequence[TaskOutput]) -> dict[str, str]:
    return {str(t.name): str(t.raw) for t in tasks_output if t.name}
