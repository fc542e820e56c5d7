"""Signed callback delivery (CONTRACT section 11), one procrastinate job per attempt.

Each attempt resolves and checks the target again (SSRF guard), connects to the address it
checked (a DNS answer that changes in between cannot redirect it), never follows redirects,
records itself in ``webhook_deliveries``, and on failure defers the next attempt with
exponential backoff and jitter. After the last attempt the delivery is a dead letter that
``bi-engine callbacks replay`` can send again.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
import procrastinate
import psycopg

from bi_engine import constants
from bi_engine.db import webhooks as webhook_rows
from bi_engine.logging import get_logger
from bi_engine.settings import Settings
from bi_engine.webhooks import enqueue, guard, signing

MAX_ATTEMPTS = 6
BASE_DELAY_S = 2.0
MAX_DELAY_S = 600.0
TIMEOUT_S = 10.0
log = get_logger("bi.callbacks")


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status: str
    http_status: int | None = None
    error: str | None = None
    duration_ms: float = 0.0


def backoff_s(attempt: int, rng: random.Random | None = None) -> float:
    """Delay before attempt ``attempt + 1``: 2 s, 4 s, 8 s... capped, with full jitter."""
    ceiling = min(MAX_DELAY_S, BASE_DELAY_S * (2 ** (attempt - 1)))
    return (rng or random).uniform(ceiling / 2, ceiling)


def payload(job: dict[str, Any], event: str) -> bytes:
    job_id = str(job["id"])
    base = f"{constants.API_PREFIX}/jobs/{job_id}"
    body: dict[str, Any] = {
        "event": event,
        "job_id": job_id,
        "type": job["type"],
        "status": job["status"],
        "status_url": base,
        "result_url": f"{base}/result",
        "finished_at": job["finished_at"].isoformat() if job["finished_at"] else None,
    }
    if job.get("headline"):
        body["headline"] = job["headline"]
    if job.get("error_code"):
        body["error"] = {"code": job["error_code"], "message": job["error_message"]}
    return orjson.dumps(body)


def signing_secret(settings: Settings) -> str:
    """BI_CALLBACK_SECRET, or the JWT secret the backend already shares with the engine."""
    return settings.callback_secret or settings.jwt_secret


def pinned(url: str, address: str) -> tuple[str, str, dict[str, Any]]:
    """``url`` aimed at the address the guard checked: (URL, Host header, extensions).

    Resolving the name again to connect would let a DNS answer that changed since the check
    (rebinding) send the request to an internal address. TLS still verifies the name (SNI).
    """
    parts = urlsplit(url)
    literal = address.replace("%", "%25")
    ip = f"[{literal}]" if ":" in address else literal
    netloc = f"{ip}:{parts.port}" if parts.port else ip
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc)), host, extensions


async def send(settings: Settings, url: str, body: bytes, event: str) -> AttemptResult:
    started = time.perf_counter()
    try:
        addresses = guard.check_url(url, settings.callback_allowed_hosts)
    except guard.UnsafeCallbackURL as exc:
        return AttemptResult("dead_letter", error=exc.message)
    target, host, extensions = pinned(url, addresses[0])
    headers = {
        "Host": host,
        "Content-Type": "application/json",
        "User-Agent": "bi-engine-callbacks/1",
        "X-BI-Event": event,
        signing.HEADER: signing.sign(signing_secret(settings), body),
    }
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False) as client:
            response = await client.post(
                target, content=body, headers=headers, extensions=extensions
            )
    except httpx.HTTPError as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return AttemptResult(
            "failed", error=f"{type(exc).__name__}: {exc}"[:500], duration_ms=elapsed
        )
    elapsed = (time.perf_counter() - started) * 1000
    if 200 <= response.status_code < 300:
        return AttemptResult("delivered", response.status_code, duration_ms=elapsed)
    return AttemptResult(
        "failed", response.status_code, f"HTTP {response.status_code}", duration_ms=elapsed
    )


async def deliver(
    settings: Settings,
    app: procrastinate.App,
    conn: psycopg.AsyncConnection[Any],
    job_id: uuid.UUID | str,
    event: str,
    attempt: int,
) -> AttemptResult:
    """One attempt; records it and defers the next one on failure (same transaction)."""
    job = await webhook_rows.job_for_callback(conn, job_id)
    if job is None or not job["callback_url"]:
        return AttemptResult("skipped")
    outcome = await send(settings, job["callback_url"], payload(job, event), event)
    if outcome.status == "failed" and attempt >= MAX_ATTEMPTS:
        outcome = AttemptResult(
            "dead_letter", outcome.http_status, outcome.error, outcome.duration_ms
        )
    delay = backoff_s(attempt) if outcome.status == "failed" else None
    async with conn.transaction():
        await webhook_rows.record_attempt(
            conn,
            job_id=job_id,
            url=job["callback_url"],
            event=event,
            attempt=attempt,
            status=outcome.status,
            http_status=outcome.http_status,
            error=outcome.error,
            duration_ms=round(outcome.duration_ms, 3),
            next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay) if delay else None,
        )
        if delay is not None:
            await enqueue.defer_delivery(app, conn, job_id, event, attempt + 1, delay_s=delay)
    log.info(
        "callback_attempt",
        job_id=str(job_id),
        callback_event=event,
        attempt=attempt,
        outcome=outcome.status,
        http_status=outcome.http_status,
    )
    return outcome
