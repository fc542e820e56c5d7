"""Authentication over HTTP: every protected route answers 401 with the envelope."""

from __future__ import annotations

import base64
import time
import uuid

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bi_engine.auth import stream
from bi_engine.auth.principal import Principal
from tests.integration.api.conftest import API

pytestmark = pytest.mark.integration

JOB = "0b1e5a8e-0000-4000-8000-000000000000"
PROTECTED = [
    ("POST", f"{API}/analyze"),
    ("POST", "/api/analyze"),
    ("GET", f"{API}/jobs"),
    ("GET", f"{API}/jobs/{JOB}"),
    ("GET", f"{API}/status/{JOB}"),
    ("GET", f"{API}/jobs/{JOB}/result"),
    ("GET", f"{API}/results/{JOB}"),
    ("GET", f"{API}/jobs/{JOB}/report"),
    ("POST", f"{API}/jobs/{JOB}/cancel"),
    ("POST", f"{API}/jobs/{JOB}/retry"),
    ("GET", f"{API}/types"),
]


def _claims(settings, **overrides):
    claims = {
        "userId": "alice",
        "role": "user",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience[0],
        "exp": int(time.time()) + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _unsigned(settings) -> str:
    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(_claims(settings))}."


def _rs256(settings) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return jwt.encode(_claims(settings), pem, algorithm="RS256")


def bad_tokens(settings) -> dict[str, str | None]:
    secret = settings.jwt_secret

    def hs(**overrides: object) -> str:
        return jwt.encode(_claims(settings, **overrides), secret, algorithm="HS256")

    return {
        "missing": None,
        "garbage": "Bearer garbage",
        "basic": "Basic YWxpY2U6c2VjcmV0",
        "alg_none": f"Bearer {_unsigned(settings)}",
        "rs256": f"Bearer {_rs256(settings)}",
        "wrong_secret": "Bearer " + jwt.encode(_claims(settings), "z" * 64, algorithm="HS256"),
        "wrong_issuer": f"Bearer {hs(iss='elsewhere')}",
        "wrong_audience": f"Bearer {hs(aud='elsewhere')}",
        "expired": f"Bearer {hs(exp=int(time.time()) - 120)}",
        "no_exp": f"Bearer {hs(exp=None)}",
        "stream_token": "Bearer "
        + stream.mint_stream_token(settings, Principal("alice"), uuid.UUID(JOB)),
    }


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_every_protected_route_refuses_bad_tokens(client, settings, method, path):
    for name, header in bad_tokens(settings).items():
        headers = {} if header is None else {"Authorization": header}
        response = await client.request(method, path, headers=headers, json={"type": "test"})
        assert response.status_code == 401, (name, response.text)
        body = response.json()
        assert body["success"] is False
        assert body["error"]["code"] in ("unauthorized", "invalid_token")
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_root_endpoints_need_no_token(client):
    for path in ("/health", "/metrics", "/openapi.json"):
        assert (await client.get(path)).status_code == 200


async def test_auth_is_checked_before_the_body_is_read(client):
    response = await client.post(f"{API}/analyze", content=b"{not json")
    assert response.status_code == 401
