"""Where one job's AI Team keeps its records: saved task outputs, LLM calls, the budget.

The worker hands the runner its connection pool (``JobContext.extras["pool"]``); without
one, a database URL in the settings opens a connection per write; without either (tests of
the crews alone, the benchmark) nothing is stored and nothing is resumed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

import psycopg

from bi_engine.db import agent_tasks, llm_usage
from bi_engine.db.connection import connect
from bi_engine.settings import Settings
from workers.narration import budget
from workers.narration.accounting import CallRecord


class Store:
    def __init__(self, settings: Settings, pool: Any = None) -> None:
        self.settings = settings
        self.pool = pool

    @property
    def enabled(self) -> bool:
        return self.pool is not None or bool(self.settings.database_url)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self.pool is not None:
            async with self.pool.connection() as conn:
                yield conn
            return
        url = self.settings.require_database_url()
        conn = await connect(url, self.settings.db_schema, application_name="bi-engine-crew")
        try:
            yield conn
        finally:
            await conn.close()

    async def budget(self) -> budget.Budget:
        if not self.enabled or self.settings.llm_monthly_budget_eur is None:
            return budget.Budget(self.settings.llm_monthly_budget_eur)
        async with self.connection() as conn:
            return await budget.current(conn, self.settings)

    async def completed_tasks(self, job_id: uuid.UUID) -> dict[str, dict[str, Any]]:
        if not self.enabled:
            return {}
        async with self.connection() as conn:
            rows = await agent_tasks.completed(conn, job_id)
        return {key: dict(row.get("output") or {}) for key, row in rows.items()}

    async def task_finished(
        self,
        *,
        job_id: uuid.UUID,
        attempt: int,
        agent: str,
        task: str,
        status: str,
        started_at: datetime,
        finished_at: datetime,
        output: dict[str, Any] | None,
        calls: Sequence[CallRecord],
        tokens: tuple[int, int],
    ) -> None:
        """The task's row and the LLM calls made so far, in one transaction."""
        if not self.enabled:
            return
        async with self.connection() as conn, conn.transaction():
            await llm_usage.insert_calls(conn, job_id, [asdict(c) for c in calls])
            await agent_tasks.record(
                conn,
                job_id=job_id,
                attempt=attempt,
                agent=agent,
                task=task,
                status=status,
                started_at=started_at,
                finished_at=finished_at,
                output=output,
                prompt_tokens=tokens[0],
                completion_tokens=tokens[1],
            )

    async def save_calls(self, job_id: uuid.UUID, calls: Sequence[CallRecord]) -> None:
        if not self.enabled or not calls:
            return
        async with self.connection() as conn:
            await llm_usage.insert_calls(conn, job_id, [asdict(c) for c in calls])

    async def job_totals(self, job_id: uuid.UUID) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        async with self.connection() as conn:
            return await llm_usage.job_totals(conn, job_id)
