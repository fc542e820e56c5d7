"""/health, /metrics and /openapi.json on a running app."""

from __future__ import annotations

import httpx
import pytest
from openapi_spec_validator import validate

from bi_engine.api import openapi
from bi_engine.api.app import create_app
from tests import pg
from tests.integration.api.conftest import API

pytestmark = pytest.mark.integration


async def test_health_reports_the_database(client):
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    openapi.HealthDocument.model_validate(body)
    assert body["status"] == "healthy"
    assert body["checks"]["database"]["status"] == "up"
    assert body["checks"]["database"]["latency_ms"] >= 0


async def test_health_is_503_when_the_database_goes_away(client, database_url, pg_admin_url):
    assert (await client.get("/health")).status_code == 200
    pg.drop_database(pg_admin_url, pg.dbname(database_url))
    response = await client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"]["status"] == "down"


async def test_requests_while_the_database_is_gone_are_503(
    client, auth, database_url, pg_admin_url
):
    pg.drop_database(pg_admin_url, pg.dbname(database_url))
    response = await client.get(f"{API}/jobs", headers=auth())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "5"


async def test_metrics_count_requests_by_route_template(client, auth):
    job = (
        await client.post(
            f"{API}/analyze", json={"type": "test", "priority": "low"}, headers=auth()
        )
    ).json()
    await client.get(f"{API}/jobs/{job['job_id']}", headers=auth())
    await client.get(f"{API}/jobs/0b1e5a8e-0000-4000-8000-000000000000", headers=auth())
    await client.get("/no/such/path")
    text = (await client.get("/metrics")).text
    assert 'bi_jobs_submitted_total{priority="low",type="test"} 1.0' in text
    assert (
        'bi_http_requests_total{method="GET",route="/api/business-intelligence/jobs/{job_id}",'
        'status="200"} 1.0' in text
    )
    assert 'route="/api/business-intelligence/jobs/{job_id}",status="404"} 1.0' in text
    assert 'bi_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert job["job_id"] not in text


async def test_openapi_is_served_and_valid(client):
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    validate(response.json())


async def test_cors_for_the_configured_front_ends(settings, auth):
    configured = settings.model_copy(update={"cors_origins": ("http://localhost:5173",)})
    app = create_app(configured)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bi.test") as client:
            preflight = await client.options(
                f"{API}/analyze",
                headers={
                    "Origin": "http://localhost:5173",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
                },
            )
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
            response = await client.post(
                f"{API}/analyze",
                json={"type": "test"},
                headers=auth(Origin="http://localhost:5173"),
            )
            assert response.status_code == 202
            assert "Location" in response.headers["access-control-expose-headers"]
            other = await client.get("/health", headers={"Origin": "http://evil.test"})
            assert "access-control-allow-origin" not in other.headers
