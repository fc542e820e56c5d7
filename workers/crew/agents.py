"""The AI Assistants of Your AI Team: roles, goals and backstories as designed.

Roles come from ``bi_engine.domain.vocabulary`` (what the API shows); goals and backstories
are the design's. Each job builds its own agents with its own LLM instances, so no state
(token counters, caches) leaks between jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from crewai import Agent
from crewai.llms.base_llm import BaseLLM
from crewai.tools import BaseTool

from bi_engine.domain import vocabulary as v


@dataclass(frozen=True, slots=True)
class AgentSpec:
    key: str
    role: str
    display: str
    goal: str
    backstory: str
    tools: tuple[str, ...] = ()


LEAD_KEY: Final = "business_analyst_lead"

SPECS: Final[dict[str, AgentSpec]] = {
    s.key: s
    for s in (
        AgentSpec(
            v.BUSINESS_ANALYST.key,
            v.BUSINESS_ANALYST.role,
            v.BUSINESS_ANALYST.display,
            "Analyze business processes and identify optimization opportunities",
            "You are a senior business analyst with 15+ years experience in process "
            "optimization and KPI analysis. You understand both operational efficiency and "
            "strategic business impact. You never compute figures yourself: your tools give "
            "you every number, and you quote them exactly.",
            ("data_analyzer", "kpi_calculator", "trend_identifier"),
        ),
        AgentSpec(
            v.PROCESS_OPTIMIZER.key,
            v.PROCESS_OPTIMIZER.role,
            v.PROCESS_OPTIMIZER.display,
            "Identify inefficiencies and recommend process improvements",
            "You are a process optimization expert specializing in business workflow "
            "analysis. You can identify bottlenecks, suggest automation opportunities, and "
            "estimate implementation effort, always from the measurements your tools return.",
            ("workflow_analyzer", "bottleneck_detector", "automation_recommender"),
        ),
        AgentSpec(
            v.DATA_INTELLIGENCE.key,
            v.DATA_INTELLIGENCE.role,
            v.DATA_INTELLIGENCE.display,
            "Transform complex data into actionable business insights",
            "You are a data intelligence specialist who excels at interpreting complex "
            "datasets and extracting meaningful business insights that drive "
            "decision-making. You separate association from cause and say how sure you are.",
            ("data_processor", "pattern_recognizer", "insight_extractor"),
        ),
        AgentSpec(
            v.EXECUTIVE_WRITER.key,
            v.EXECUTIVE_WRITER.role,
            v.EXECUTIVE_WRITER.display,
            "Write executive summaries a C-level reader acts on in two minutes",
            "You write for executives: the single most important message first, then what "
            "matters and what to do, in plain words and short paragraphs.",
        ),
        AgentSpec(
            v.TECHNICAL_WRITER.key,
            v.TECHNICAL_WRITER.role,
            v.TECHNICAL_WRITER.display,
            "Document how the results were obtained, for the people who implement them",
            "You write implementation documentation: data, methods, formulas and the "
            "strength of the evidence, precise and brief.",
        ),
        AgentSpec(
            v.BUSINESS_TRANSLATOR.key,
            v.BUSINESS_TRANSLATOR.role,
            v.BUSINESS_TRANSLATOR.display,
            "Translate technical findings into business consequences and actions",
            "You turn analytics into business language: what a finding costs or earns, who "
            "it affects and what to do on Monday morning. You say Process Steps, Process Runs "
            "and Your Processes, never nodes, executions or workflows.",
        ),
        AgentSpec(
            v.QUALITY_REVIEWER.key,
            v.QUALITY_REVIEWER.role,
            v.QUALITY_REVIEWER.display,
            "Make sure every statement and every number in the report is supported",
            "You are the last check before a report reaches the client. You verify every "
            "number against the computed facts with your number checker and correct or remove "
            "what cannot be traced.",
            ("number_checker",),
        ),
        AgentSpec(
            LEAD_KEY,
            f"{v.BUSINESS_ANALYST.role}, team lead",
            f"{v.BUSINESS_ANALYST.display} (team lead)",
            "Lead Your AI Team to a correct, actionable business analysis",
            "You are the senior business analyst who leads this analysis. You hand each "
            "Processing Task to the best-suited colleague, give them the context they need and "
            "check their work before it goes into the report.",
        ),
    )
}

DISPLAY_BY_ROLE: Final = {s.role: s.display for s in SPECS.values()}


def build(
    keys: Sequence[str], *, llm_for: Callable[[str], BaseLLM], tools: Mapping[str, BaseTool]
) -> dict[str, Agent]:
    """The agents ``keys``, one LLM instance each; they do their own work (no delegation)."""
    return {key: _agent(SPECS[key], llm_for(key), tools, delegate=False) for key in keys}


def build_lead(llm: BaseLLM) -> Agent:
    """The team lead of a hierarchical crew: no tools, delegates every Processing Task."""
    return _agent(SPECS[LEAD_KEY], llm, {}, delegate=True)


def _agent(
    spec: AgentSpec, llm: BaseLLM, tools: Mapping[str, BaseTool], *, delegate: bool
) -> Agent:
    return Agent(
        role=spec.role,
        goal=spec.goal,
        backstory=spec.backstory,
        tools=[tools[name] for name in spec.tools if name in tools],
        llm=llm,
        verbose=False,
        allow_delegation=delegate,
        max_iter=12,
        max_retry_limit=0,
        cache=True,
    )
