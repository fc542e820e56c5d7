"""The LLMs Your AI Team talks to: the pattern LLM, and the provider chain that ends in it.

``PatternLLM`` is a ``crewai.BaseLLM`` that drives a crew with no network at all: for each
Processing Task it calls the task's tools with native tool calls, then gives the pattern
narrator's answer; as team lead it delegates each task to the right colleague and hands
their work on. ``ChainLLM`` asks the job's provider chain first and lets the pattern LLM
answer any call no provider could. Both check the job's abort signal before every call.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

from crewai import BaseLLM
from crewai.llms.base_llm import llm_call_context
from pydantic import PrivateAttr

from workers.crew.assignments import ASSIGNMENTS, Assignment
from workers.crew.errors import Aborted
from workers.narration.chain import ChainSession, Completion
from workers.narration.pattern import PatternNarrator

DELEGATE: Final = "delegate_work_to_coworker"
_MARKER = re.compile(r"\[ref:([a-z_]+)\]")
_CONTEXT_INTRO: Final = "This is the context you're working with:"
_REACT_ACTION = re.compile(r"Action:\s*([\w\- ]+?)\s*\n\s*Action Input:\s*(\{.*\})", re.DOTALL)
_FINAL_ANSWER = re.compile(r"^.*?Final Answer:\s*", re.DOTALL)
_MESSAGE_KEYS: Final = ("role", "content", "tool_calls", "tool_call_id", "name")


class AbortSignal:
    """Set (from the event loop) when the job must stop; read by every LLM call."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = "cancelled"

    def set(self, reason: str = "cancelled") -> None:
        self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Aborted(self.reason)


class PatternBrain:
    """Decides the pattern LLM's next move from the conversation so far (it keeps no state)."""

    def __init__(
        self,
        narrator: PatternNarrator,
        *,
        roles: Mapping[str, str],
        fallback: Mapping[str, str],
    ) -> None:
        self.narrator = narrator
        self.roles = dict(roles)
        """agent role -> agent key"""
        self.fallback = dict(fallback)
        """agent key -> the assignment it does when a task cannot be recognised"""

    def answer(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None,
        *,
        task_name: str | None,
        task_text: str,
        role: str | None,
    ) -> str | list[dict[str, Any]]:
        assignment = self.resolve(task_name, task_text, messages, role)
        offered = _tool_names(tools)
        if DELEGATE in offered:
            return self._lead(assignment, messages)
        if assignment is None:
            return self.narrator.write("general")
        called = _called(messages)
        pending = [t for t in assignment.uses if t in offered and t not in called]
        if pending:
            return [_tool_call(pending[0], self._arguments(pending[0], messages), len(called))]
        if assignment.key == "quality_review":
            return self.narrator.review_note(_ungrounded_count(messages))
        return self.narrator.write(assignment.key)

    def resolve(
        self,
        task_name: str | None,
        task_text: str,
        messages: Sequence[Mapping[str, Any]],
        role: str | None,
    ) -> Assignment | None:
        if task_name in ASSIGNMENTS:
            return ASSIGNMENTS[task_name]
        for text in (task_text, _first_user(messages)):
            match = _MARKER.search(text or "")
            if match and match.group(1) in ASSIGNMENTS:
                return ASSIGNMENTS[match.group(1)]
        key = self.fallback.get(self.roles.get(role or "", ""), "")
        return ASSIGNMENTS.get(key)

    def _lead(
        self, assignment: Assignment | None, messages: Sequence[Mapping[str, Any]]
    ) -> str | list[dict[str, Any]]:
        results = [m for m in messages if m.get("role") == "tool"]
        if results:
            return str(results[-1].get("content") or "")
        if assignment is None:
            return self.narrator.write("general")
        coworker = next((r for r, k in self.roles.items() if k == assignment.agent), "")
        args = {
            "task": f"{assignment.title} {assignment.marker()}: {assignment.brief}",
            "context": "Use your tools for every figure; the facts are in the task.",
            "coworker": coworker,
        }
        return [_tool_call(DELEGATE, args, 0)]

    def _arguments(self, tool: str, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if tool == "number_checker":
            return {"text": _context_of(messages)}
        return {}


def _tool_names(tools: Sequence[Mapping[str, Any]] | None) -> set[str]:
    names = set()
    for tool in tools or []:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping) and function.get("name"):
            names.add(str(function["name"]))
    return names


def _called(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    names = []
    for message in messages:
        for call in message.get("tool_calls") or []:
            function = call.get("function", {}) if isinstance(call, Mapping) else {}
            names.append(str(function.get("name", "")))
    return names


def _tool_call(name: str, arguments: dict[str, Any], index: int) -> dict[str, Any]:
    return {
        "id": f"call_{name}_{index}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def _first_user(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in messages:
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def _context_of(messages: Sequence[Mapping[str, Any]]) -> str:
    text = _first_user(messages)
    return text.split(_CONTEXT_INTRO, 1)[1] if _CONTEXT_INTRO in text else text


def _ungrounded_count(messages: Sequence[Mapping[str, Any]]) -> int:
    for message in reversed(messages):
        if message.get("role") != "tool":
            continue
        try:
            return int(json.loads(str(message.get("content") or "{}")).get("ungrounded_count", 0))
        except (ValueError, AttributeError):
            return 0
    return 0


class PatternLLM(BaseLLM):
    """A crewai LLM that answers from the pattern narrator with native tool calls."""

    model: str = "pattern"
    _brain: PatternBrain = PrivateAttr()
    _abort: AbortSignal = PrivateAttr(default_factory=AbortSignal)

    @classmethod
    def create(cls, brain: PatternBrain, abort: AbortSignal | None = None) -> PatternLLM:
        llm = cls(model="pattern")
        llm._brain = brain
        llm._abort = abort or AbortSignal()
        return llm

    def supports_function_calling(self) -> bool:
        return True

    def supports_stop_words(self) -> bool:
        return False

    def get_context_window_size(self) -> int:
        return 128_000

    def get_input_tokens_count(
        self, messages: Any, tools: Any = None, response_model: Any = None
    ) -> int:
        """A cheap estimate (four characters a token), without crewai's warning."""
        if isinstance(messages, str):
            return len(messages) // 4
        return sum(len(str(m.get("content") or "")) for m in messages) // 4

    def call(
        self,
        messages: Any,
        tools: list[dict[str, Any]] | None = None,
        callbacks: list[Any] | None = None,
        available_functions: dict[str, Any] | None = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> str | Any:
        self._abort.check()
        chat = _as_messages(messages)
        logged: Any = chat  # crewai's LLMMessage is a TypedDict of the same shape
        with llm_call_context():
            self._emit_call_started_event(
                messages=logged, tools=tools, from_task=from_task, from_agent=from_agent
            )
            answer, usage = self._respond(chat, tools, from_task, from_agent)
            self._emit_call_completed_event(
                response=answer,
                call_type=_call_type(answer),
                from_task=from_task,
                from_agent=from_agent,
                messages=logged,
                usage=usage,
            )
        return answer

    def _respond(
        self, chat: list[dict[str, Any]], tools: Any, from_task: Any, from_agent: Any
    ) -> tuple[str | list[dict[str, Any]], dict[str, int]]:
        return self._pattern(chat, tools, from_task, from_agent), _usage(0, 0)

    def _pattern(
        self, chat: list[dict[str, Any]], tools: Any, from_task: Any, from_agent: Any
    ) -> str | list[dict[str, Any]]:
        return self._brain.answer(
            chat,
            tools,
            task_name=getattr(from_task, "name", None),
            task_text=str(getattr(from_task, "description", "") or ""),
            role=getattr(from_agent, "role", None),
        )


class ChainLLM(PatternLLM):
    """The job's provider chain first; the pattern LLM for whatever no provider answered."""

    model: str = "chain"
    _session: ChainSession = PrivateAttr()

    @classmethod
    def over(
        cls, session: ChainSession, brain: PatternBrain, abort: AbortSignal | None = None
    ) -> ChainLLM:
        llm = cls(model="chain")
        llm._brain = brain
        llm._abort = abort or AbortSignal()
        llm._session = session
        return llm

    def call(
        self,
        messages: Any,
        tools: list[dict[str, Any]] | None = None,
        callbacks: list[Any] | None = None,
        available_functions: dict[str, Any] | None = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> str | Any:
        return super().call(
            messages, tools, callbacks, available_functions, from_task, from_agent, response_model
        )

    def _respond(
        self, chat: list[dict[str, Any]], tools: Any, from_task: Any, from_agent: Any
    ) -> tuple[str | list[dict[str, Any]], dict[str, int]]:
        completion = self._session.complete(chat, tools)
        self._abort.check()
        if completion is None:
            self._session.record_pattern_call()
            return self._pattern(chat, tools, from_task, from_agent), _usage(0, 0)
        usage = _usage(completion.prompt_tokens, completion.completion_tokens)
        return _to_crewai(completion, tools), usage


def _as_messages(messages: Any) -> list[dict[str, Any]]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [{k: m[k] for k in _MESSAGE_KEYS if k in m} for m in messages]


def _to_crewai(completion: Completion, tools: Any) -> str | list[dict[str, Any]]:
    if completion.tool_calls:
        return [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in completion.tool_calls
        ]
    react = _REACT_ACTION.search(completion.text)
    offered = _tool_names(tools)
    if react and "Final Answer:" not in completion.text:
        name = _match_tool(react.group(1), offered)
        if name:
            return [
                {
                    "id": "call_react_0",
                    "type": "function",
                    "function": {"name": name, "arguments": react.group(2)},
                }
            ]
    return _FINAL_ANSWER.sub("", completion.text).strip()


def _match_tool(written: str, offered: set[str]) -> str | None:
    """ReAct names tools loosely ("Delegate work to coworker"): match them to the schema."""
    wanted = re.sub(r"[\s\-]+", "_", written.strip()).lower()
    return next((name for name in offered if name.lower() == wanted), None)


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _call_type(answer: Any) -> Any:
    from crewai.events.types.llm_events import LLMCallType

    return LLMCallType.TOOL_CALL if isinstance(answer, list) else LLMCallType.LLM_CALL
