"""The error envelope everywhere; bad input gets a clear 4xx, changes nothing, never a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bi_engine.api import openapi
from tests.integration.api.conftest import API

pytestmark = pytest.mark.integration


def envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    openapi.ErrorEnvelope.model_validate(body)
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body


async def count_jobs(db) -> int:
    with db() as conn:
        return int(conn.execute("SELECT count(*) AS n FROM analyses").fetchone()["n"])


@pytest.mark.parametrize("body", [b"", b"   \n"])
async def test_empty_body_is_400(client, auth, db, body):
    response = await client.post(f"{API}/analyze", content=body, headers=auth())
    envelope(response, 400, "empty_body")
    assert await count_jobs(db) == 0


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"type": "test",}', b"{'type': 'test'}", b"\xff\xfe", b'{"a": NaN}', b"[" * 2000],
)
async def test_malformed_json_is_400(client, auth, db, body):
    response = await client.post(f"{API}/analyze", content=body, headers=auth())
    envelope(response, 400, "malformed_json")
    assert await count_jobs(db) == 0


async def test_invalid_fields_are_422_with_locations(client, auth, db):
    response = await client.post(
        f"{API}/analyze",
        json={"type": "process_analysis", "priority": "asap", "data": {"runs": [{"steps": [{}]}]}},
        headers=auth(),
    )
    body = envelope(response, 422, "validation_error")
    locations = [problem["loc"] for problem in body["error"]["details"]]
    assert locations == [["priority"]]  # the envelope is checked first
    response = await client.post(
        f"{API}/analyze",
        json={"type": "process_analysis", "data": {"runs": [{"steps": [{}]}]}},
        headers=auth(),
    )
    body = envelope(response, 422, "validation_error")
    assert [p["loc"] for p in body["error"]["details"]] == [
        ["data", "runs", 0, "steps", 0, "name"],
        ["data", "runs", 0, "steps", 0, "started_at"],
    ]
    assert await count_jobs(db) == 0


async def test_body_over_the_limit_is_413_from_content_length(client, auth, settings, db):
    big = b'{"type": "test", "data": {"pad": "' + b"x" * settings.max_body_bytes + b'"}}'
    response = await client.post(f"{API}/analyze", content=big, headers=auth())
    body = envelope(response, 413, "payload_too_large")
    assert body["error"]["details"]["max_bytes"] == settings.max_body_bytes
    assert await count_jobs(db) == 0


async def test_body_over_the_limit_is_413_while_streaming(client, auth, settings, db):
    chunks_sent = 0

    async def chunks():
        nonlocal chunks_sent
        for _ in range(64):
            chunks_sent += 1
            yield b"x" * (settings.max_body_bytes // 8)

    response = await client.post(f"{API}/analyze", content=chunks(), headers=auth())
    envelope(response, 413, "payload_too_large")
    assert await count_jobs(db) == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope"), ("GET", f"{API}/nope"), ("POST", f"{API}/jobs/x/y/z"), ("GET", "/api")],
)
async def test_unknown_routes_are_404_envelopes(client, method, path):
    envelope(await client.request(method, path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{API}/analyze"),
        ("DELETE", f"{API}/jobs"),
        ("PUT", "/health"),
        ("POST", f"{API}/types"),
    ],
)
async def test_wrong_methods_are_405_envelopes(client, method, path):
    response = await client.request(method, path)
    envelope(response, 405, "method_not_allowed")
    assert response.headers["allow"]


@pytest.mark.parametrize(
    "job_id", ["not-a-uuid", "1", "%00", "0b1e" * 10, "'; DROP TABLE analyses;--"]
)
@pytest.mark.parametrize("suffix", ["", "/result", "/report"])
async def test_a_job_id_that_is_not_a_uuid_is_404(client, auth, job_id, suffix):
    envelope(await client.get(f"{API}/jobs/{job_id}{suffix}", headers=auth()), 404, "job_not_found")


async def test_unknown_jobs_are_404(client, auth):
    job = "0b1e5a8e-0000-4000-8000-000000000000"
    for path in (f"jobs/{job}", f"status/{job}", f"jobs/{job}/result", f"results/{job}"):
        envelope(await client.get(f"{API}/{path}", headers=auth()), 404, "job_not_found")
    for action in ("cancel", "retry"):
        envelope(
            await client.post(f"{API}/jobs/{job}/{action}", headers=auth()), 404, "job_not_found"
        )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)
documents = (
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(
                ["test", "process_analysis", "trend_analysis", "custom_analysis", "x"]
            )
            | json_values,
            "data": json_values,
            "priority": st.sampled_from(["high", "low"]) | json_values,
            "callback_url": st.text(max_size=30) | json_values,
            "metrics_focus": json_values,
        },
    )
    | json_values
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=documents)
async def test_no_input_shape_produces_a_5xx(client, auth, document):
    response = await client.post(f"{API}/analyze", content=orjson.dumps(document), headers=auth())
    assert response.status_code in (202, 400, 422), response.text
    if response.status_code != 202:
        assert response.json()["success"] is False


async def test_nul_characters_are_422_not_a_database_error(client, auth, db):
    body = b'{"type": "test", "context": "x\\u0000", "data": {"note": "\\u0000"}}'
    response = await client.post(f"{API}/analyze", content=body, headers=auth())
    details = envelope(response, 422, "validation_error")["error"]["details"]
    assert [d["loc"] for d in details] == [["context"], ["data", "note"]]
    assert await count_jobs(db) == 0
