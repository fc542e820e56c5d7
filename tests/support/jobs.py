"""Tokens, submissions and the database-side checks every reliability test makes.

The checks read the engine's own tables: one terminal state per analysis, and per job an
event log whose ``seq`` runs 1, 2, 3... with exactly one terminal event, the last.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from bi_engine.auth import tokens
from bi_engine.constants import API_PREFIX
from bi_engine.settings import Settings

API = API_PREFIX
TERMINAL_KINDS = ("completed", "failed", "cancelled")


def settings_for(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, db_schema="bi", **overrides)


def bearer(settings: Settings, user: str, role: str = "user") -> str:
    return tokens.mint_user_token(settings, user_id=user, email=f"{user}@x.test", role=role)


def auth(settings: Settings, user: str, role: str = "user") -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer(settings, user, role)}"}


async def submit(
    http: httpx.AsyncClient,
    settings: Settings,
    user: str,
    data: dict[str, Any],
    *,
    kind: str = "test",
    **fields: Any,
) -> dict[str, Any]:
    response = await http.post(
        f"{API}/analyze",
        json={"type": kind, "data": data, **fields},
        headers=auth(settings, user),
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


def connect(database_url: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(
        database_url, autocommit=True, row_factory=dict_row, options="-c search_path=bi,public"
    )


async def aconnect(database_url: str) -> psycopg.AsyncConnection[dict[str, Any]]:
    return await psycopg.AsyncConnection.connect(
        database_url, autocommit=True, row_factory=dict_row, options="-c search_path=bi,public"
    )


def status_counts(conn: psycopg.Connection[dict[str, Any]]) -> Counter[str]:
    rows = conn.execute("SELECT status, count(*) AS n FROM analyses GROUP BY status").fetchall()
    return Counter({row["status"]: int(row["n"]) for row in rows})


def unsettled_queue_jobs(conn: psycopg.Connection[dict[str, Any]]) -> int:
    """Queue jobs still ``doing`` for analyses that are already terminal.

    A worker ends an analysis in one transaction and procrastinate records its queue job's
    outcome in the next (or, when the worker died in between, the stalled-job maintenance
    closes it): for a moment the two disagree.
    """
    row = conn.execute(
        "SELECT count(*) AS n FROM procrastinate_jobs j"
        " JOIN analyses a ON a.id::text = j.args->>'job_id'"
        " WHERE j.task_name = 'bi.run_analysis' AND j.status = 'doing'"
        " AND a.status = ANY(%s)",
        (list(TERMINAL_KINDS),),
    ).fetchone()
    return int(row["n"]) if row else 0


def wait_all_terminal(
    database_url: str, expected: int, timeout: float, poll_s: float = 0.5
) -> Counter[str]:
    """Poll until ``expected`` analyses are terminal and their queue jobs are settled; the
    status counts at that moment."""
    deadline = time.monotonic() + timeout
    with connect(database_url) as conn:
        while True:
            counts = status_counts(conn)
            done = sum(counts[s] for s in TERMINAL_KINDS)
            settled = done >= expected and unsettled_queue_jobs(conn) == 0
            if settled or time.monotonic() > deadline:
                return counts
            time.sleep(poll_s)


async def await_all_terminal(
    database_url: str, expected: int, timeout: float, poll_s: float = 0.5
) -> Counter[str]:
    return await asyncio.to_thread(wait_all_terminal, database_url, expected, timeout, poll_s)


@dataclass
class LogAudit:
    """What the event logs of a set of jobs look like."""

    jobs: int = 0
    events: int = 0
    gaps: list[str] = field(default_factory=list)
    """Jobs whose seqs are not exactly 1..n."""
    terminal_counts: Counter[int] = field(default_factory=Counter)
    """How many jobs had 0, 1, 2... terminal events."""
    not_last: list[str] = field(default_factory=list)
    """Jobs with an event after their terminal one."""
    last_seq_mismatch: list[str] = field(default_factory=list)
    """Jobs whose analyses.last_seq is not the log's last seq."""
    completed_events: Counter[int] = field(default_factory=Counter)
    retrying_events: int = 0

    @property
    def clean(self) -> bool:
        return not (self.gaps or self.not_last or self.last_seq_mismatch) and set(
            self.terminal_counts
        ) <= {1}


def audit_event_logs(
    conn: psycopg.Connection[dict[str, Any]], job_ids: Iterable[str] | None = None
) -> LogAudit:
    """Check every job's log: seq 1..n, exactly one terminal event, and it is the last."""
    where = "" if job_ids is None else "WHERE a.id = ANY(%s::uuid[])"
    params: tuple[Any, ...] = () if job_ids is None else (list(job_ids),)
    rows = conn.execute(
        "SELECT a.id::text AS id, a.last_seq,"
        " array_agg(e.seq ORDER BY e.seq) AS seqs,"
        " array_agg(e.kind ORDER BY e.seq) AS kinds,"
        " count(*) FILTER (WHERE e.kind = 'status' AND e.data->>'status' = 'retrying')"
        "   AS retrying"
        " FROM analyses a JOIN analysis_events e ON e.job_id = a.id "
        f"{where} GROUP BY a.id, a.last_seq",
        params,
    ).fetchall()
    report = LogAudit()
    for row in rows:
        _audit_one(report, row)
    return report


def _audit_one(report: LogAudit, row: dict[str, Any]) -> None:
    seqs: list[int] = row["seqs"]
    kinds: list[str] = row["kinds"]
    report.jobs += 1
    report.events += len(seqs)
    report.retrying_events += int(row["retrying"])
    if seqs != list(range(1, len(seqs) + 1)):
        report.gaps.append(row["id"])
    if row["last_seq"] != seqs[-1]:
        report.last_seq_mismatch.append(row["id"])
    terminal = [i for i, kind in enumerate(kinds) if kind in TERMINAL_KINDS]
    report.terminal_counts[len(terminal)] += 1
    report.completed_events[kinds.count("completed")] += 1
    if terminal and terminal[-1] != len(kinds) - 1:
        report.not_last.append(row["id"])
