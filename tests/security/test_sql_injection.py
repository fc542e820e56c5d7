"""SQL-injection strings in every text field come back (or are stored) verbatim.

Each string goes through the real API into every field that takes text — the submission's
``context``, ``time_period``, ``metrics_focus``, the keys and values of ``data``, the
callback URL's path and query, the ``Idempotency-Key`` header, the JWT's ``userId``,
``email`` and ``role`` claims, and a template's name, description, question and config —
and is read back through the API where the API shows it, else from the database. Nothing
runs: no table disappears, no ``pg_sleep`` delays an answer, no one sees more rows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bi_engine.auth import tokens
from bi_engine.settings import Settings
from tests.security.conftest import wait_until
from tests.support import figures, jobs
from tests.support.processes import Process

pytestmark = [pytest.mark.slow, pytest.mark.acceptance]

API = jobs.API
INJECTIONS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE analyses; --",
    '"; DROP TABLE bi.analyses CASCADE; --',
    "Robert'); DROP TABLE students;--",
    "1; SELECT pg_sleep(5) --",
    "' || pg_sleep(5) || '",
    "' UNION SELECT usename, passwd FROM pg_shadow --",
    "%' AND 1=0 UNION ALL SELECT NULL, NULL --",
    "$$; DROP SCHEMA bi CASCADE; $$",
    "$tag$ DROP SCHEMA bi CASCADE $tag$",
    "\\'; DELETE FROM analyses; --",
    "E'\\x27'; TRUNCATE analyses; --",
    "1' AND (SELECT count(*) FROM analyses) > 0 --",
    "admin'--",
    "/* */ OR /**/ 1=1",
    "%s %(x)s {} {0}",
    "\u02bc OR \u02bc1\u02bc=\u02bc1",
    "\u2019; DROP TABLE analyses; --",
    "a\r\nSet-Cookie: injected=1",
    "\u202e; DROP TABLE analyses --",
    "${jndi:ldap://127.0.0.1/a} {{7*7}} <script>alert(1)</script>",
    "\U0001f4a3'; DROP TABLE analyses; --",
]
KEY_SAFE = [s for s in INJECTIONS if all(0x21 <= ord(c) <= 0x7E for c in s.replace(" ", "!"))]
"""Idempotency keys are visible ASCII: the ones that fit are sent as keys too."""


def _tables(database_url: str) -> set[str]:
    with jobs.connect(database_url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'bi'").fetchall()
    return {r["tablename"] for r in rows}


async def test_submission_fields_are_stored_verbatim(
    http: httpx.AsyncClient,
    sec_settings: Settings,
    sec_database_url: str,
    sec_worker: Process,
    auth: Callable[..., dict[str, str]],
) -> None:
    tables = _tables(sec_database_url)
    submitted: dict[str, str] = {}
    slowest = 0.0
    for text in INJECTIONS:
        body = {
            "type": "test",
            "data": {text: text, "nested": {"k": [text]}, "sleep_s": 0},
            "context": text,
            "time_period": text[:100],
            "metrics_focus": [text[:200], text[:200]],
            "callback_url": _hook(text),
        }
        started = time.monotonic()
        response = await http.post(f"{API}/analyze", json=body, headers=auth("inject"))
        slowest = max(slowest, time.monotonic() - started)
        assert response.status_code == 202, (text, response.text)
        submitted[str(response.json()["job_id"])] = text
    assert slowest < 3.0  # no pg_sleep ran
    wait_until(lambda: _all_ended(sec_database_url, list(submitted)), timeout=60, what="the jobs")
    with jobs.connect(sec_database_url) as conn:
        rows = conn.execute(
            "SELECT a.id::text AS id, a.options, a.callback_url, a.status, i.data"
            " FROM analyses a JOIN analysis_inputs i ON i.job_id = a.id"
            " WHERE a.id = ANY(%s::uuid[])",
            (list(submitted),),
        ).fetchall()
    assert len(rows) == len(INJECTIONS)
    for row in rows:
        text = submitted[row["id"]]
        assert row["status"] == "completed", row
        assert row["options"]["context"] == text
        assert row["options"]["time_period"] == text[:100]
        assert row["options"]["metrics_focus"] == [text[:200]] * 2
        assert row["data"][text] == text
        assert row["data"]["nested"] == {"k": [text]}
        assert row["callback_url"] == _hook(text)
        assert httpx.URL(row["callback_url"]).params["q"] == text
    assert _tables(sec_database_url) == tables


def _hook(text: str) -> str:
    """A loopback callback URL (port 9: nothing listens) carrying ``text`` in its query."""
    return f"http://127.0.0.1:9/hook?{httpx.QueryParams({'q': text})}"


def _all_ended(database_url: str, ids: list[str]) -> bool:
    with jobs.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM analyses WHERE id = ANY(%s::uuid[])"
            " AND status IN ('completed', 'failed', 'cancelled')",
            (ids,),
        ).fetchone()
    return bool(row and row["n"] == len(ids))


async def test_idempotency_keys_replay_exactly(
    http: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    body = {"type": "test", "data": {"sleep_s": 0}}
    for text in KEY_SAFE:
        key = text.replace(" ", "_")
        headers = {**auth("inject-keys"), "Idempotency-Key": key}
        first = await http.post(f"{API}/analyze", json=body, headers=headers)
        again = await http.post(f"{API}/analyze", json=body, headers=headers)
        assert first.status_code == 202, (key, first.text)
        assert again.status_code in (200, 202), (key, again.text)  # 200: it already ended
        assert first.json()["job_id"] == again.json()["job_id"]
        assert again.headers["idempotent-replayed"] == "true"
    assert len(KEY_SAFE) >= 10


async def test_token_claims_are_identities_not_sql(
    http: httpx.AsyncClient,
    sec_settings: Settings,
    sec_database_url: str,
    auth: Callable[..., dict[str, str]],
) -> None:
    other = await jobs.submit(http, sec_settings, "bystander", {"sleep_s": 0})
    for text in INJECTIONS:
        user = f"{text}-{uuid.uuid4().hex[:4]}"
        token = tokens.mint_user_token(sec_settings, user_id=user, email=text, role=text)
        headers = {"Authorization": f"Bearer {token}"}
        created = await http.post(
            f"{API}/analyze", json={"type": "test", "data": {}}, headers=headers
        )
        assert created.status_code == 202, (text, created.text)
        listed = (await http.get(f"{API}/jobs", headers=headers)).json()["jobs"]
        assert [j["job_id"] for j in listed] == [created.json()["job_id"]]
        peek = await http.get(f"{API}/jobs/{other['job_id']}", headers=headers)
        assert peek.status_code == 404  # a role that merely contains "admin" is no admin
        with jobs.connect(sec_database_url) as conn:
            row = conn.execute(
                "SELECT user_id, user_email FROM analyses WHERE id = %s",
                (created.json()["job_id"],),
            ).fetchone()
        assert row == {"user_id": user, "user_email": text}


async def test_template_fields_round_trip_verbatim(
    http: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    headers = auth("inject-templates")
    for text in INJECTIONS:
        fields: dict[str, Any] = {
            "name": text[:200],
            "description": text,
            "question": text,
            "config": {"context": text, text: [text]},
        }
        created = await http.post(f"{API}/templates", json=fields, headers=headers)
        assert created.status_code == 201, (text, created.text)
        read = (await http.get(f"{API}/templates/{created.json()['id']}", headers=headers)).json()
        for key, value in fields.items():
            assert read[key] == value, (key, read)
    listed = (await http.get(f"{API}/templates", headers=headers)).json()
    names = {t["name"] for t in listed["templates"]}
    assert {t[:200] for t in INJECTIONS} <= names
    figures.record(
        "security",
        f"SQL injection: {len(INJECTIONS)} strings in every text field (submission, data keys"
        f" and values, callback URL, {len(KEY_SAFE)} as Idempotency-Keys, JWT userId/email/"
        "role, template name/description/question/config): all stored and returned verbatim,"
        " no statement ran",
    )
