"""Business words (CONTRACT section 9), analysis types, AI teams and their agents.

Everything a user reads about the engine's internals goes through these names, so the
API's ``/types``, progress messages and reports speak the same language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

BUSINESS_WORDS: Final = {
    "agent": ("AI Assistant", "Your AI Team"),
    "crew": ("AI Team", "Analysis Teams"),
    "task": ("Analysis Job", "Processing Tasks"),
    "execution": ("Process Run", "Analysis Sessions"),
    "workflow": ("Business Process", "Your Processes"),
    "node": ("Process Step", "Process Activities"),
}
"""technical word -> (singular shown to users, collective label)."""

TEAM_DISPLAY: Final = "Your AI Team"


@dataclass(frozen=True, slots=True)
class Agent:
    key: str
    role: str
    display: str


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    label: str
    agents: tuple[Agent, ...]


@dataclass(frozen=True, slots=True)
class AnalysisType:
    type: str
    label: str
    description: str
    team: str


BUSINESS_ANALYST = Agent(
    "business_analyst", "Senior Business Performance Analyst", "Business Performance Analyst"
)
PROCESS_OPTIMIZER = Agent(
    "process_optimizer", "Business Process Optimization Expert", "Process Optimization Expert"
)
DATA_INTELLIGENCE = Agent(
    "data_intelligence", "Business Data Intelligence Specialist", "Data Intelligence Specialist"
)
EXECUTIVE_WRITER = Agent("executive_writer", "Executive Writer", "Executive Writer")
TECHNICAL_WRITER = Agent("technical_writer", "Technical Writer", "Technical Writer")
BUSINESS_TRANSLATOR = Agent("business_translator", "Business Translator", "Business Translator")
QUALITY_REVIEWER = Agent("quality_reviewer", "Quality Reviewer", "Quality Reviewer")

TEAMS: Final = (
    Team("business_analyst_team", "Business Analyst Team", (BUSINESS_ANALYST,)),
    Team("process_optimization_team", "Process Optimization Team", (PROCESS_OPTIMIZER,)),
    Team("data_intelligence_team", "Data Intelligence Team", (DATA_INTELLIGENCE,)),
    Team(
        "report_generation_team",
        "Report Generation Team",
        (EXECUTIVE_WRITER, TECHNICAL_WRITER, BUSINESS_TRANSLATOR, QUALITY_REVIEWER),
    ),
)
TEAM_IDS: Final = tuple(team.id for team in TEAMS)

ANALYSIS_TYPES: Final = (
    AnalysisType(
        "process_analysis",
        "Business Process Analysis",
        "How your Business Processes perform: cycle times, bottlenecks, failing Process "
        "Steps, automation opportunities and an implementation roadmap.",
        "business_analyst_team",
    ),
    AnalysisType(
        "data_interpretation",
        "Data Interpretation",
        "What a dataset says: data quality, outliers, correlations and the groups that "
        "differ most.",
        "data_intelligence_team",
    ),
    AnalysisType(
        "trend_analysis",
        "Trend Analysis",
        "Where your figures are heading: direction, level shifts, seasonality, anomalies "
        "and a short forecast.",
        "data_intelligence_team",
    ),
    AnalysisType(
        "optimization_review",
        "Optimization Review",
        "Where your Process Runs lose time and money, and what to automate first.",
        "process_optimization_team",
    ),
    AnalysisType(
        "custom_analysis",
        "Custom Analysis",
        "Your own question, or a saved template, answered by Your AI Team.",
        "business_analyst_team",
    ),
    AnalysisType(
        "test",
        "Smoke Test",
        "Runs the pipeline end to end without analysing anything.",
        "report_generation_team",
    ),
)
