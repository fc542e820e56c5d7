"""``bi-engine submit TYPE FILE``: submit a JSON file through the HTTP API, optionally follow it.

FILE holds either the ``data`` object or a whole submit body (with ``type`` and ``data``).
Without ``--follow`` the 202 document is printed. With ``--follow`` a live progress bar is
drawn (on stderr) from the job's SSE stream, which resumes with ``Last-Event-ID`` after a
drop, and the report is printed (on stdout) at the end. Exit status: 0 completed, 1 failed
or cancelled, 2 refused or unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any, Final
from urllib.parse import urljoin

import httpx
import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from bi_engine import constants
from bi_engine.auth import tokens
from bi_engine.errors import BIError
from bi_engine.live.client import READ_TIMEOUT_S, ClientEvent, FollowError, error_message, follow
from bi_engine.settings import load_settings

DEFAULT_URL: Final = "http://127.0.0.1:8000"
_TYPE_KEYS: Final = ("type", "analysis_type")


class SubmitFailed(BIError):
    """The analysis could not be submitted."""

    code = "submit_failed"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="submit a JSON file through the HTTP API (--follow: live progress, then the report)",
    )
    parser.add_argument("type", metavar="TYPE", choices=constants.ANALYSIS_TYPES)
    parser.add_argument(
        "file", metavar="FILE", help="the data object, or a whole submit body ('-': stdin)"
    )
    parser.add_argument("--priority", choices=constants.PRIORITIES)
    parser.add_argument("--follow", action="store_true", help="show live progress and the report")
    parser.add_argument("--url", help=f"API base URL (default: $BI_API_URL or {DEFAULT_URL})")
    parser.add_argument(
        "--token", help="JWT (default: $BI_TOKEN, else a development token signed with JWT_SECRET)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    body = submit_body(args.type, read_json(args.file), args.priority)
    base = args.url or os.environ.get("BI_API_URL") or DEFAULT_URL
    token = args.token or os.environ.get("BI_TOKEN") or _development_token()
    return asyncio.run(_submit(base, token, body, follow_job=args.follow))


def read_json(path: str) -> Any:
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise SubmitFailed(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SubmitFailed(f"{path} is not valid JSON: {exc}") from exc


def submit_body(kind: str, document: Any, priority: str | None) -> dict[str, Any]:
    """A whole submit body (``type`` + ``data``) is taken as is; anything else is ``data``."""
    if not isinstance(document, dict):
        raise SubmitFailed("the file must hold a JSON object")
    if "data" in document and any(key in document for key in _TYPE_KEYS):
        named = document.get("type", document.get("analysis_type"))
        if named != kind:
            raise SubmitFailed(f"the file's type {named!r} is not the TYPE argument {kind!r}")
        body = {k: v for k, v in document.items() if k != "analysis_type"} | {"type": kind}
    else:
        body = {"type": kind, "data": document}
    if priority is not None:
        body["priority"] = priority
    return body


def _development_token() -> str:
    settings = load_settings()
    return tokens.mint_user_token(
        settings, user_id="dev-user", email="dev@pilotpros.local", role="admin"
    )


async def _submit(base: str, token: str, body: dict[str, Any], *, follow_job: bool) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = httpx.Timeout(30.0, read=READ_TIMEOUT_S)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout) as http:
        accepted = await _post(http, body)
        if not follow_job:
            sys.stdout.write(orjson.dumps(accepted, option=orjson.OPT_INDENT_2).decode() + "\n")
            return 0
        console = Console(stderr=True)
        console.print(f"Job [bold]{accepted['job_id']}[/] accepted ({body['type']})")
        try:
            last = await _follow(http, console, urljoin(base, accepted["events_url"]))
        except FollowError as exc:
            raise SubmitFailed(str(exc)) from exc
        return await _conclude(http, console, accepted["job_id"], last)


async def _post(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    try:
        response = await http.post(f"{constants.API_PREFIX}/analyze", json=body)
    except httpx.HTTPError as exc:
        raise SubmitFailed(f"cannot reach the API at {http.base_url}: {exc}") from exc
    if response.status_code not in (200, 202):
        raise SubmitFailed(f"the API refused the analysis: {error_message(response)}")
    document: dict[str, Any] = response.json()
    return document


async def _follow(http: httpx.AsyncClient, console: Console, url: str) -> ClientEvent | None:
    """Draw the progress bar until the terminal event; return that event."""
    columns = (
        TextColumn("{task.fields[step]:<24}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("[dim]{task.fields[message]}"),
    )
    last: ClientEvent | None = None
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("job", total=100, step="Queued", message="")

        def resuming(last_id: str | None) -> None:
            progress.console.print(f"[yellow]connection lost; resuming after event {last_id}")

        async for event in follow(http, url, on_reconnect=resuming):
            _show(progress, bar, event)
            last = event
    return last


def _show(progress: Progress, bar: TaskID, event: ClientEvent) -> None:
    data = event.data if isinstance(event.data, dict) else {}
    if event.kind == "progress":
        percent = data.get("progress")
        step, message = str(data.get("step") or ""), str(data.get("message") or "")
        done = float(percent) if isinstance(percent, int | float) else None
        progress.update(bar, completed=done, step=step, message=message)
    elif event.kind == "status":
        progress.update(bar, step=str(data.get("status") or "").capitalize())
    elif event.kind == "completed":
        progress.update(bar, completed=100, step="Completed", message="")
    elif event.terminal:
        progress.update(bar, step=event.kind.capitalize(), message=str(data.get("message") or ""))


async def _conclude(
    http: httpx.AsyncClient, console: Console, job_id: str, last: ClientEvent | None
) -> int:
    base = f"{constants.API_PREFIX}/jobs/{job_id}"
    if last is not None and last.kind == "completed":
        response = await http.get(f"{base}/report", headers={"Accept": "text/markdown"})
        if response.status_code != 200:
            raise SubmitFailed(f"the report could not be read: {error_message(response)}")
        sys.stdout.write(response.text.rstrip("\n") + "\n")
        return 0
    status = (await http.get(base)).json()
    error = status.get("error") or {}
    outcome = status.get("status", last.kind if last else "unknown")
    detail = f": {error.get('code')} — {error.get('message')}" if error else ""
    console.print(f"[red]The analysis {outcome}{detail}")
    return 1
