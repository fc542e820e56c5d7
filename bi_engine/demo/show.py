"""Submitting the bundled samples, drawing their live progress, printing the reports."""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.rule import Rule

from bi_engine import constants
from bi_engine.live.client import ClientEvent, FollowError, follow

SAMPLES = ("process_log", "n8n_executions", "sales_series", "customer_dataset")


def sample_bodies(names: tuple[str, ...] = SAMPLES) -> list[tuple[str, dict[str, Any]]]:
    folder = resources.files("bi_engine.samples")
    return [(name, orjson.loads((folder / f"{name}.json").read_bytes())) for name in names]


async def run_samples(
    base_url: str, token: str, console: Console, names: tuple[str, ...] = SAMPLES
) -> list[dict[str, Any]]:
    """Submit every sample, follow all of them at once, return their final status documents."""
    headers = {"Authorization": f"Bearer {token}"}
    timeout = httpx.Timeout(30.0, read=60.0)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout) as http:
        accepted = [(name, await _submit(http, body)) for name, body in sample_bodies(names)]
        with Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("[dim]{task.fields[message]}"),
            console=console,
        ) as progress:
            await asyncio.gather(*(_follow(http, progress, name, job) for name, job in accepted))
        return [
            (await http.get(f"{constants.API_PREFIX}/jobs/{job['job_id']}")).json()
            for _, job in accepted
        ]


async def _submit(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(f"{constants.API_PREFIX}/analyze", json=body)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


async def _follow(
    http: httpx.AsyncClient, progress: Progress, name: str, job: dict[str, Any]
) -> None:
    bar = progress.add_task(name, total=100, message="queued")
    try:
        async for event in follow(http, job["events_url"]):
            _advance(progress, bar, event)
    except FollowError as exc:
        progress.update(bar, message=f"[red]{exc}")


def _advance(progress: Progress, bar: TaskID, event: ClientEvent) -> None:
    data = event.data if isinstance(event.data, dict) else {}
    if event.kind == "progress" and isinstance(data.get("progress"), int | float):
        progress.update(bar, completed=data["progress"], message=str(data.get("message", ""))[:70])
    elif event.kind == "completed":
        progress.update(bar, completed=100, message="[green]completed")
    elif event.terminal:
        progress.update(bar, message=f"[red]{event.kind}")


async def print_reports(
    base_url: str, token: str, jobs: list[dict[str, Any]], console: Console
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/markdown"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http:
        for job in jobs:
            console.print(Rule(f"{job['type']} — {job['job_id']}"))
            if job["status"] != "completed":
                error = job.get("error") or {}
                console.print(f"[red]{job['status']}: {error.get('code')} {error.get('message')}")
                continue
            report = await http.get(f"{constants.API_PREFIX}/jobs/{job['job_id']}/report")
            console.print(Markdown(report.text))


def print_next_steps(
    console: Console, base_url: str, token: str, database_url: str, schema: str
) -> None:
    """Printed unwrapped, so the token and commands can be copied as they are."""
    console.print(Rule("What to open next"))
    jobs_url = f"{base_url}{constants.API_PREFIX}/jobs"
    lines = [
        f"Dashboard:    {base_url}/dashboard/  (sign in with the token below)",
        f"Token:        export TOKEN={token}",
        f'Your jobs:    curl -H "Authorization: Bearer $TOKEN" {jobs_url}',
        f"OpenAPI:      {base_url}/openapi.json",
        f"Metrics:      {base_url}/metrics",
        f"Submit more:  BI_API_URL={base_url} BI_TOKEN=$TOKEN"
        " bi-engine submit trend_analysis FILE --follow",
        f"SQL:          psql '{database_url}' -c 'SELECT type, status, run_seconds"
        f" FROM {schema}.report_analyses ORDER BY created_at DESC LIMIT 10'",
    ]
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False, markup=False)
