"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests of the cloud LLM path.

It speaks ``POST /v1/chat/completions`` (and ``/chat/completions``) over real sockets, so the
engine's provider chain, timeouts, retries and accounting are exercised exactly as against a
cloud provider. Behaviour is scripted per request: queue replies with :meth:`FakeOpenAI.script`
(tool calls, ReAct text, final answers, HTTP 500, HTTP 429, slow answers); when the queue is
empty the default responder acts like a cooperative model (it calls each offered tool once,
then answers). Every request is recorded.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], "Reply"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    text: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    prompt_tokens: int = 120
    completion_tokens: int = 30

    @staticmethod
    def final(text: str, *, prompt_tokens: int = 120, completion_tokens: int = 30) -> Reply:
        return Reply(text=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    @staticmethod
    def call(name: str, arguments: dict[str, Any] | None = None) -> Reply:
        """A native tool call."""
        return Reply(tool_calls=[{"name": name, "arguments": arguments or {}}])

    @staticmethod
    def react(tool: str, arguments: dict[str, Any] | None = None) -> Reply:
        """A ReAct text step, as models without native tool calling answer."""
        body = json.dumps(arguments or {})
        return Reply(text=f"Thought: I need the figures.\nAction: {tool}\nAction Input: {body}")

    @staticmethod
    def error(status: int, *, retry_after: float | None = None) -> Reply:
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return Reply(status=status, headers=headers)

    @staticmethod
    def slow(delay_s: float, then: Reply | None = None) -> Reply:
        base = then or Reply.final("A late answer.")
        return Reply(
            status=base.status,
            text=base.text,
            tool_calls=base.tool_calls,
            delay_s=delay_s,
            headers=base.headers,
        )


def cooperative(writer: Callable[[dict[str, Any]], str] | None = None) -> Responder:
    """A responder that behaves like a helpful model: each offered tool once, then an answer."""

    def respond(request: dict[str, Any]) -> Reply:
        tools = [t["function"]["name"] for t in request.get("tools") or []]
        called = _called_tools(request.get("messages") or [])
        pending = [name for name in tools if name not in called and not _is_delegation(name)]
        if pending:
            return Reply.call(pending[0], _default_arguments(request, pending[0]))
        text = writer(request) if writer else "The analysis is complete."
        return Reply.final(text)

    return respond


def _is_delegation(name: str) -> bool:
    return "coworker" in name


def _called_tools(messages: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for message in messages:
        for call in message.get("tool_calls") or []:
            names.add(call.get("function", {}).get("name", ""))
    return names


def _default_arguments(request: dict[str, Any], name: str) -> dict[str, Any]:
    for tool in request.get("tools") or []:
        if tool["function"]["name"] == name:
            params = tool["function"].get("parameters") or {}
            required = params.get("required") or []
            props = params.get("properties") or {}
            return {key: _placeholder(props.get(key, {})) for key in required}
    return {}


def _placeholder(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    return ""


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int
    at: float


class FakeOpenAI:
    """The server; use :func:`serve` to run it in a background thread."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder = responder or cooperative()
        self.requests: list[Recorded] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order."""
        with self._lock:
            self._queue.extend(replies)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    @property
    def completions(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.responder(body)

    def _record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)

    def start(self) -> None:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None


@contextmanager
def serve(responder: Responder | None = None) -> Iterator[FakeOpenAI]:
    """Run a fake server on an ephemeral 127.0.0.1 port for the duration of the block."""
    server = FakeOpenAI(responder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def completion_body(reply: Reply, model: str) -> dict[str, Any]:
    """The JSON of a chat completion, in OpenAI's shape."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    finish = "stop"
    if reply.tool_calls:
        finish = "tool_calls"
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
            }
            for c in reply.tool_calls
        ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


def _error_body(status: int) -> dict[str, Any]:
    kind = "rate_limit_exceeded" if status == 429 else "server_error"
    return {"error": {"message": f"fake provider answered {status}", "type": kind, "code": kind}}


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the default stderr access log."""

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": "not found"}})
                return
            reply = fake._next_reply(body)
            fake._record(
                Recorded(self.path, dict(self.headers.items()), body, reply.status, time.time())
            )
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.status != 200:
                self._send(reply.status, _error_body(reply.status), reply.headers)
                return
            self._send(200, completion_body(reply, str(body.get("model", "fake"))))

        def _send(
            self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                return

    return Handler
