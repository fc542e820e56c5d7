"""crewai's event bus → the job's progress, in business words.

The bus is process-wide and runs handlers on a thread pool, so each job's crew runs with
:data:`CURRENT` set to its :class:`JobTracker`; the one listener of the process routes every
event to the tracker of the job that emitted it (the ContextVar follows crewai into its
threads). Events are applied in ``emission_sequence`` order (late ones are dropped) and
percentages only ever grow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

from crewai.events import BaseEventListener, crewai_event_bus
from crewai.events.event_bus import CrewAIEventsBus
from crewai.events.types.agent_events import AgentExecutionStartedEvent
from crewai.events.types.task_events import TaskCompletedEvent, TaskStartedEvent
from crewai.events.types.tool_usage_events import ToolUsageStartedEvent

from bi_engine.domain.vocabulary import TEAM_DISPLAY
from workers.crew.agents import DISPLAY_BY_ROLE
from workers.crew.assignments import ASSIGNMENTS

TOOL_ACTIVITY: Final = {
    "data_analyzer": "is profiling your data",
    "kpi_calculator": "is calculating your KPIs",
    "trend_identifier": "is looking for trends",
    "workflow_analyzer": "is mapping Your Processes",
    "bottleneck_detector": "is looking for bottlenecks",
    "automation_recommender": "is looking for automation opportunities",
    "data_processor": "is reading your data",
    "pattern_recognizer": "is looking for patterns",
    "insight_extractor": "is extracting the key insights",
    "number_checker": "is checking every figure against the facts",
    "delegate_work_to_coworker": "is handing the Processing Task to a colleague",
    "ask_question_to_coworker": "is asking a colleague",
}


@dataclass(frozen=True, slots=True)
class Update:
    percent: int
    step: str
    message: str
    agent: str | None


class ProgressPlan:
    """Each Processing Task gets an equal slice of ``start``..``end`` percent."""

    def __init__(self, keys: Sequence[str], start: int = 15, end: int = 95) -> None:
        self.keys = list(keys)
        self.start = start
        self.end = end

    def at(self, key: str, fraction: float = 0.0) -> int:
        if key not in self.keys or not self.keys:
            return self.start
        slot = (self.end - self.start) / len(self.keys)
        index = self.keys.index(key)
        return int(self.start + slot * (index + min(max(fraction, 0.0), 0.9)))

    def done(self, key: str) -> int:
        if key not in self.keys:
            return self.start
        slot = (self.end - self.start) / len(self.keys)
        return int(self.start + slot * (self.keys.index(key) + 1))


def message(display: str | None, activity: str) -> str:
    """ "Your AI Team: the Process Optimization Expert is looking for bottlenecks..."."""
    who = f"the {display}" if display else "Your AI Team"
    return f"{TEAM_DISPLAY}: {who} {activity}..."


class JobTracker:
    """One job's view of the bus: turns events into ordered, monotonic progress updates."""

    def __init__(
        self,
        plan: ProgressPlan,
        emit: Callable[[Update], None],
        *,
        displays: Mapping[str, str] | None = None,
    ) -> None:
        self.plan = plan
        self.emit = emit
        self.displays = dict(DISPLAY_BY_ROLE) | dict(displays or {})
        self._lock = threading.Lock()
        self._last_seq = 0
        self._percent = 0
        self._task: str | None = None
        self._tools_seen: set[tuple[str, str]] = set()
        self._said: tuple[str, str] | None = None

    def handle(self, event: Any) -> None:
        with self._lock:
            seq = getattr(event, "emission_sequence", None) or 0
            if seq and seq < self._last_seq:
                return  # an older event delivered late: its news is stale
            self._last_seq = max(self._last_seq, seq)
            update = self._update(event)
            if update is None or (update.step, update.message) == self._said:
                return  # nothing new to tell
            self._said = (update.step, update.message)
            self._percent = max(self._percent, update.percent)
            self.emit(Update(self._percent, update.step, update.message, update.agent))

    def _update(self, event: Any) -> Update | None:
        if isinstance(event, TaskStartedEvent):
            return self._task_started(getattr(event.task, "name", None))
        if isinstance(event, ToolUsageStartedEvent):
            return self._tool(event.tool_name, event.agent_role)
        if isinstance(event, AgentExecutionStartedEvent):
            return self._agent(getattr(event.agent, "role", None))
        if isinstance(event, TaskCompletedEvent):
            return self._task_done(getattr(event.task, "name", None))
        return None

    def _task_started(self, key: str | None) -> Update | None:
        if key not in ASSIGNMENTS:
            return None
        self._task = key
        assignment = ASSIGNMENTS[key]
        display = _display_of_key(assignment.agent)
        return Update(
            self.plan.at(key), assignment.title, message(display, assignment.activity), display
        )

    def _task_done(self, key: str | None) -> Update | None:
        if key not in ASSIGNMENTS:
            return None
        assignment = ASSIGNMENTS[key]
        display = _display_of_key(assignment.agent)
        text = f"{TEAM_DISPLAY}: {assignment.title.lower()} — done."
        return Update(self.plan.done(key), assignment.title, text, display)

    def _tool(self, tool: str, role: str | None) -> Update | None:
        key = self._task
        if key is None or (key, tool) in self._tools_seen:
            return None
        self._tools_seen.add((key, tool))
        display = self.displays.get(role or "")
        activity = TOOL_ACTIVITY.get(tool, f"is using {tool.replace('_', ' ')}")
        fraction = 0.2 + 0.15 * len([t for t in self._tools_seen if t[0] == key])
        return Update(
            self.plan.at(key, fraction), ASSIGNMENTS[key].title, message(display, activity), display
        )

    def _agent(self, role: str | None) -> Update | None:
        key = self._task
        display = self.displays.get(role or "")
        if key is None or display is None:
            return None
        assignment = ASSIGNMENTS[key]
        if _display_of_key(assignment.agent) != display:
            return None  # the team lead planning: the task start already said who works
        return Update(
            self.plan.at(key, 0.1), assignment.title, message(display, assignment.activity), display
        )


def _display_of_key(agent_key: str) -> str | None:
    from workers.crew.agents import SPECS

    spec = SPECS.get(agent_key)
    return spec.display if spec else None


CURRENT: ContextVar[JobTracker | None] = ContextVar("bi_crew_job_tracker", default=None)

_EVENTS: Final = (
    TaskStartedEvent,
    TaskCompletedEvent,
    ToolUsageStartedEvent,
    AgentExecutionStartedEvent,
)


class ProgressListener(BaseEventListener):
    """The process's one listener: hands each event to the tracker of its job."""

    def setup_listeners(self, crewai_event_bus: CrewAIEventsBus) -> None:
        for kind in _EVENTS:
            crewai_event_bus.on(kind)(_route)


def _route(source: Any, event: Any) -> None:
    tracker = CURRENT.get()
    if tracker is not None:
        tracker.handle(event)


_listener: ProgressListener | None = None
_listener_lock = threading.Lock()


def install() -> ProgressListener:
    """Register the listener once per process (idempotent)."""
    global _listener
    with _listener_lock:
        if _listener is None:
            _listener = ProgressListener()
        return _listener


__all__ = ["CURRENT", "JobTracker", "ProgressPlan", "Update", "crewai_event_bus", "install"]
