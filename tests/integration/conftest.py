"""Fixtures shared by the in-process integration suites: backend tokens and SQL access."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from bi_engine.auth import tokens
from bi_engine.settings import Settings

TokenFactory = Callable[..., dict[str, str]]


@pytest.fixture
def auth(settings: Settings) -> TokenFactory:
    """``auth("alice")`` -> headers with a valid backend JWT for that user."""

    def headers(user: str = "alice", role: str = "user", **extra: str) -> dict[str, str]:
        token = tokens.mint_user_token(settings, user_id=user, email=f"{user}@x.test", role=role)
        return {"Authorization": f"Bearer {token}", **extra}

    return headers


@pytest.fixture
def db(database_url: str) -> Callable[[], psycopg.Connection[dict[str, Any]]]:
    """A factory of autocommit connections to this test's database, rows as dicts."""

    def connect() -> psycopg.Connection[dict[str, Any]]:
        return psycopg.connect(
            database_url, autocommit=True, row_factory=dict_row, options="-c search_path=bi,public"
        )

    return connect
