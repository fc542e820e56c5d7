"""procrastinate's job tables and functions, inside the engine's schema.

Revision ID: 0001_procrastinate
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from bi_engine.migrations import procrastinate_schema

revision = "0001_procrastinate"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    procrastinate_schema.apply_schema()


def downgrade() -> None:
    procrastinate_schema.drop_schema()
