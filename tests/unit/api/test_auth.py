"""Backend JWTs are accepted exactly as CONTRACT section 4 says; everything else is a 401."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bi_engine.auth import principal as auth
from bi_engine.auth import stream
from bi_engine.auth.tokens import mint_user_token
from bi_engine.settings import Settings

pytestmark = pytest.mark.unit

SETTINGS = Settings(database_url="postgresql://unused", jwt_secret="s" * 64)


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "userId": "u-1",
        "email": "u1@x.test",
        "role": "user",
        "iss": SETTINGS.jwt_issuer,
        "aud": "pilotpros-bi",
        "exp": int(time.time()) + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: str = SETTINGS.jwt_secret, alg: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=alg)


def refused(token: str) -> auth.Unauthenticated:
    with pytest.raises(auth.Unauthenticated) as caught:
        auth.verify_user_token(SETTINGS, token)
    assert caught.value.status_code == 401
    return caught.value


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def test_backend_token_gives_the_principal() -> None:
    who = auth.verify_user_token(SETTINGS, sign(claims(role="admin")))
    assert who == auth.Principal(user_id="u-1", email="u1@x.test", role="admin")
    assert who.is_admin


def test_minted_development_token_is_accepted() -> None:
    token = mint_user_token(SETTINGS, user_id="dev", role="user")
    assert auth.verify_user_token(SETTINGS, token).user_id == "dev"


@pytest.mark.parametrize("aud", ["pilotpros-frontend", ["other", "pilotpros-bi"]])
def test_audience_may_be_a_string_or_a_list(aud: Any) -> None:
    assert auth.verify_user_token(SETTINGS, sign(claims(aud=aud))).user_id == "u-1"


def test_numeric_user_id_is_a_string() -> None:
    assert auth.verify_user_token(SETTINGS, sign(claims(userId=42))).user_id == "42"


def test_alg_none_is_refused() -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims())}."
    refused(token)


def test_rs256_token_is_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    refused(jwt.encode(claims(), pem, algorithm="RS256"))


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_are_refused(alg: str) -> None:
    refused(sign(claims(), alg=alg))


def test_wrong_secret_is_refused() -> None:
    refused(sign(claims(), key="x" * 64))


def test_wrong_issuer_is_refused() -> None:
    refused(sign(claims(iss="someone-else")))


def test_missing_issuer_is_refused() -> None:
    refused(sign(claims(iss=None)))


def test_wrong_audience_is_refused() -> None:
    refused(sign(claims(aud="another-app")))


def test_expired_token_is_refused() -> None:
    error = refused(sign(claims(exp=int(time.time()) - 60)))
    assert "expired" in error.message


def test_token_without_exp_is_refused() -> None:
    refused(sign(claims(exp=None)))


def test_token_without_user_id_is_refused() -> None:
    refused(sign(claims(userId=None)))


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "", "eyJ.eyJ.sig", "\u00e9t\u00e9"])
def test_garbage_is_refused(token: str) -> None:
    refused(token)


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer   "])
def test_missing_or_wrong_authorization_header(header: str | None) -> None:
    with pytest.raises(auth.Unauthenticated):
        auth.authenticate(SETTINGS, header)


def test_stream_token_opens_only_its_job() -> None:
    job_id = uuid.uuid4()
    token = stream.mint_stream_token(SETTINGS, auth.Principal("u-1"), job_id)
    grant = stream.verify_query_token(SETTINGS, token)
    assert grant.principal.user_id == "u-1"
    assert grant.job_id == job_id
    assert grant.allows(job_id)
    assert not grant.allows(uuid.uuid4())


def test_stream_token_is_not_a_bearer_token() -> None:
    token = stream.mint_stream_token(SETTINGS, auth.Principal("u-1"), uuid.uuid4())
    refused(token)


def test_stream_token_that_claims_the_backend_audience_is_still_not_a_bearer() -> None:
    forged = sign(claims(scope="stream", job_id=str(uuid.uuid4())))
    refused(forged)


def test_query_token_may_be_the_backend_jwt() -> None:
    grant = stream.verify_query_token(SETTINGS, sign(claims()))
    assert grant.job_id is None
    assert grant.allows(uuid.uuid4())


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "garbage",
        sign({"scope": "stream", "aud": "bi-stream", "iss": "bi-engine", "sub": "u"}),
        sign(
            {
                "scope": "stream",
                "aud": "bi-stream",
                "iss": "bi-engine",
                "sub": "u",
                "job_id": "nope",
                "exp": int(time.time()) + 60,
            }
        ),
        sign(
            {
                "scope": "stream",
                "aud": "bi-stream",
                "iss": "bi-engine",
                "sub": "u",
                "job_id": str(uuid.uuid4()),
                "exp": int(time.time()) - 60,
            }
        ),
        sign(
            {
                "scope": "stream",
                "aud": "bi-stream",
                "iss": "bi-engine",
                "sub": "u",
                "job_id": str(uuid.uuid4()),
                "exp": int(time.time()) + 60,
            },
            key="y" * 64,
        ),
    ],
)
def test_bad_query_tokens_are_refused(token: str | None) -> None:
    with pytest.raises(auth.Unauthenticated):
        stream.verify_query_token(SETTINGS, token)


@pytest.mark.parametrize("user_id", ["a\x00b", "\ud800", "x" * 201, ""])
def test_user_ids_postgres_cannot_store_are_refused(user_id: str) -> None:
    refused(sign(claims(userId=user_id)))


def test_an_unstorable_email_is_dropped() -> None:
    assert auth.verify_user_token(SETTINGS, sign(claims(email="a\x00@x"))).email is None
