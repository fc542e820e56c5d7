"""What each worker process reports about its LLM circuit breakers, for ``GET /health``.

The breakers live in the worker processes; the API cannot see them. Each worker upserts one
row per provider of its chain every few seconds (and deletes its rows when it stops), so the
API reads the state of the live workers' breakers with one cheap query.

Revision ID: 0003_llm_circuits
Revises: 0002_engine_tables
Create Date: 2026-11-25
"""

from __future__ import annotations

from bi_engine.migrations import sqltext

revision = "0003_llm_circuits"
down_revision = "0002_engine_tables"
branch_labels = None
depends_on = None

UP = r"""
CREATE TABLE __SCHEMA__.llm_circuits (
    worker text NOT NULL CHECK (length(worker) BETWEEN 1 AND 300),
    provider text NOT NULL CHECK (length(provider) BETWEEN 1 AND 300),
    state text NOT NULL CHECK (state IN ('closed', 'open', 'half_open')),
    reported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (worker, provider)
);
CREATE INDEX llm_circuits_reported_idx ON __SCHEMA__.llm_circuits (reported_at);
COMMENT ON TABLE __SCHEMA__.llm_circuits IS
    'Circuit breaker state per worker process and LLM provider, refreshed by the workers.';
"""

DOWN = r"""
DROP TABLE IF EXISTS __SCHEMA__.llm_circuits;
"""


def upgrade() -> None:
    sqltext.execute(UP)


def downgrade() -> None:
    sqltext.execute(DOWN)
