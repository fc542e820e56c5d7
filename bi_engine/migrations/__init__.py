"""Alembic migrations: procrastinate's schema and the engine's own, inside ``BI_DB_SCHEMA``."""
