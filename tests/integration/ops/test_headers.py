"""Security headers, CORS for the front ends (SSE included), request ids, client addresses."""

from __future__ import annotations

import pytest

from tests.integration.ops.conftest import API, audit_rows, flush_audit, running

pytestmark = pytest.mark.integration

FRONT_END = "http://localhost:5173"


async def test_security_headers_on_api_answers(client, auth):
    for response in (
        await client.get("/health"),
        await client.get(f"{API}/jobs", headers=auth()),
        await client.get(f"{API}/jobs"),  # 401
        await client.get("/no/such/route"),
    ):
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "Strict-Transport-Security" not in headers


async def test_the_dashboard_may_run_its_own_files_only(client):
    page = await client.get("/dashboard/")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert "'unsafe-inline'" not in csp
    assert page.headers.get_list("Content-Security-Policy") == [csp]


async def test_hsts_only_in_production(settings):
    production = {"environment": "production", "jwt_secret": "s" * 40}
    async with running(settings, **production) as (_app, client):
        response = await client.get("/health")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_cors_preflight_for_the_event_stream_and_the_api(settings, auth):
    async with running(settings, cors_origins=(FRONT_END,)) as (_app, client):
        preflight = await client.options(
            f"{API}/jobs/0b1e5a8e-0000-4000-8000-000000000000/events",
            headers={
                "Origin": FRONT_END,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization,last-event-id",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == FRONT_END
        allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
        for header in ("authorization", "last-event-id", "idempotency-key", "prefer"):
            assert header in allowed
        submit = await client.options(
            f"{API}/analyze",
            headers={
                "Origin": FRONT_END,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,idempotency-key,prefer",
            },
        )
        assert submit.status_code == 200
        accepted = await client.post(
            f"{API}/analyze", json={"type": "test"}, headers=auth(Origin=FRONT_END)
        )
        assert accepted.status_code == 202
        exposed = accepted.headers["Access-Control-Expose-Headers"]
        for header in ("Location", "Retry-After", "RateLimit-Remaining", "X-Request-ID"):
            assert header in exposed
        refused = await client.options(
            f"{API}/analyze",
            headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"},
        )
        assert refused.status_code == 400
        assert "Access-Control-Allow-Origin" not in refused.headers


async def test_request_ids_are_taken_when_safe_and_made_otherwise(client, auth):
    echoed = await client.get("/health", headers={"X-Request-ID": "abc-123.def:9"})
    assert echoed.headers["X-Request-ID"] == "abc-123.def:9"
    for unsafe in ("x" * 200, "two words", "<script>", "a\\b"):
        made = await client.get("/health", headers={"X-Request-ID": unsafe})
        assert made.headers["X-Request-ID"] != unsafe
        assert len(made.headers["X-Request-ID"]) == 32


async def test_x_forwarded_for_is_believed_only_from_trusted_proxies(settings, auth, db):
    forwarded = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}
    async with running(settings) as (app, client):  # no trusted proxies
        await client.get(f"{API}/jobs", headers=auth("direct", **forwarded))
        await flush_audit(app)
    async with running(settings, trusted_proxies=("127.0.0.0/8",)) as (app, client):
        await client.get(f"{API}/jobs", headers=auth("proxied", **forwarded))
        await client.get(f"{API}/jobs", headers=auth("plain"))
        await flush_audit(app)
    with db() as conn:
        assert audit_rows(conn, user_id="direct")[0]["ip"] == "127.0.0.1"
        assert audit_rows(conn, user_id="proxied")[0]["ip"] == "198.51.100.7"
        assert audit_rows(conn, user_id="plain")[0]["ip"] == "127.0.0.1"
