"""The schema keeps data sane, notifies listeners, and fences the reporting role."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from bi_engine import constants

pytestmark = pytest.mark.integration


def _new_analysis(conn: psycopg.Connection, **overrides: object) -> uuid.UUID:
    values = {"user_id": "u1", "type": "test", "priority": "normal"} | overrides
    columns = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    row = conn.execute(
        f"INSERT INTO bi.analyses ({columns}) VALUES ({marks}) RETURNING id",
        list(values.values()),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def _append(conn: psycopg.Connection, job: uuid.UUID, *kinds: str) -> int:
    events = [{"kind": kind, "data": {"n": i}} for i, kind in enumerate(kinds)]
    row = conn.execute("SELECT bi.append_events(%s, %s)", (job, Jsonb(events))).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("type", "astrology"),
        ("status", "paused"),
        ("priority", "urgent"),
        ("sensitivity", "secret"),
        ("progress", 101),
        ("callback_url", "ftp://example.com/x"),
        ("agent_team", "marketing_team"),
        ("user_id", ""),
    ],
)
def test_constraints_reject_invalid_analyses(database_url: str, column: str, value: object) -> None:
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.IntegrityError):
        _new_analysis(conn, **{column: value})


def test_failed_needs_an_error_and_completed_a_result(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        job = _new_analysis(conn)
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "UPDATE bi.analyses SET status='failed', finished_at=now() WHERE id=%s", (job,)
            )
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "UPDATE bi.analyses SET status='completed', finished_at=now() WHERE id=%s", (job,)
            )
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE bi.analyses SET status='cancelled' WHERE id=%s", (job,))


def test_events_need_an_existing_job_and_unique_seq(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            _append(conn, uuid.uuid4(), "status")
        job = _new_analysis(conn)
        _append(conn, job, "status")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO bi.analysis_events (job_id, seq, kind) VALUES (%s, 1, 'progress')",
                (job,),
            )
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO bi.analysis_events (job_id, seq, kind) VALUES (%s, 9, 'gossip')",
                (job,),
            )


def test_append_events_numbers_contiguously(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        job = _new_analysis(conn)
        assert _append(conn, job, "status") == 1
        assert _append(conn, job, "progress", "progress", "progress") == 4
        assert _append(conn, job) == 4
        seqs = [
            r[0]
            for r in conn.execute(
                "SELECT seq FROM bi.analysis_events WHERE job_id=%s ORDER BY seq", (job,)
            )
        ]
        assert seqs == [1, 2, 3, 4]


def test_a_real_listener_receives_one_notify_per_statement(database_url: str) -> None:
    channel = constants.events_channel("bi")
    with (
        psycopg.connect(database_url, autocommit=True) as listener,
        psycopg.connect(database_url, autocommit=True) as writer,
    ):
        listener.execute(f"LISTEN {channel}")
        job = _new_analysis(writer)
        with writer.transaction():
            _append(writer, job, "status", "progress")
        notes = list(listener.notifies(timeout=5, stop_after=1))
        assert len(notes) == 1
        payload = json.loads(notes[0].payload)
        assert [(e["seq"], e["kind"]) for e in payload["events"]] == [
            (1, "status"),
            (2, "progress"),
        ]
        assert payload["events"][0]["job_id"] == str(job)
        assert payload["events"][0]["user_id"] == "u1"
        assert list(listener.notifies(timeout=0.3)) == []


def test_large_batches_notify_references_instead(database_url: str) -> None:
    channel = constants.events_channel("bi")
    with (
        psycopg.connect(database_url, autocommit=True) as listener,
        psycopg.connect(database_url, autocommit=True) as writer,
    ):
        listener.execute(f"LISTEN {channel}")
        job = _new_analysis(writer)
        big = [{"kind": "progress", "data": {"message": "x" * 500}} for _ in range(40)]
        writer.execute("SELECT bi.append_events(%s, %s)", (job, Jsonb(big)))
        (note,) = list(listener.notifies(timeout=5, stop_after=1))
        payload = json.loads(note.payload)
        assert payload["refs"] == [
            {"job_id": str(job), "user_id": "u1", "first_seq": 1, "last_seq": 40}
        ]


def test_reporting_role_reads_views_and_nothing_else(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        job = _new_analysis(conn)
        conn.execute(
            "UPDATE bi.analyses SET status='completed', result='{}', started_at=created_at, "
            "finished_at=created_at + interval '3 seconds' WHERE id=%s",
            (job,),
        )
        conn.execute("SET ROLE bi_reporting")
        for view in ("report_analyses", "report_daily", "report_agents", "report_llm_usage"):
            conn.execute(f"SELECT * FROM bi.{view}").fetchall()
        row = conn.execute("SELECT run_seconds FROM bi.report_analyses").fetchone()
        assert row == (3.0,)
        daily = conn.execute("SELECT submitted, completed, success_rate FROM bi.report_daily")
        assert daily.fetchone() == (1, 1, 1)
        for table in ("analyses", "analysis_events", "audit_log", "procrastinate_jobs"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(f"SELECT 1 FROM bi.{table}")


def test_report_daily_counts_failures(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        ok, bad = _new_analysis(conn), _new_analysis(conn)
        conn.execute(
            "UPDATE bi.analyses SET status='completed', result='{}', started_at=now(), "
            "finished_at=now() WHERE id=%s",
            (ok,),
        )
        conn.execute(
            "UPDATE bi.analyses SET status='failed', error_code='timeout', started_at=now(), "
            "finished_at=now() WHERE id=%s",
            (bad,),
        )
        row = conn.execute(
            "SELECT submitted, completed, failed, success_rate FROM bi.report_daily"
        ).fetchone()
        assert row is not None
        assert row[:3] == (2, 1, 1)
        assert float(row[3]) == 0.5
