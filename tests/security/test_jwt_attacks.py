"""JWT attacks against a real server: every forged, confused or stale token is a 401.

Each attack is sent to a bearer endpoint (status read, list, submit) AND to the streams,
which also take ``?token=`` (SSE job stream, SSE feed, WebSocket). A valid token for the
same request is the control: it must work, so a 401 proves the token was the problem.
Nothing an attacker sends changes data: the analyses table is counted before and after.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bi_engine.auth import stream
from bi_engine.auth.principal import Principal
from bi_engine.settings import Settings
from tests.support import figures, jobs
from tests.support.processes import ApiServer

pytestmark = [pytest.mark.slow, pytest.mark.acceptance]

API = jobs.API


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    parts = [json.dumps(header).encode(), json.dumps(claims).encode()]
    return ".".join([*(_b64(p) for p in parts), signature])


def _claims(settings: Settings, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "userId": "mallory",
        "email": "mallory@x.test",
        "role": "admin",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience[0],
        "iat": now,
        "exp": now + 600,
    }
    for key, value in changes.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def _rsa_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def _tamper(token: str, **changes: Any) -> str:
    """Change claims of a validly signed token, keeping its signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return ".".join([header, _b64(json.dumps(claims).encode()), signature])


def attacks(settings: Settings, victim_job: str) -> dict[str, str]:
    """Name -> token. Every one must be refused."""
    secret = settings.jwt_secret
    private, public = _rsa_pair()
    valid = jwt.encode(_claims(settings, role="user"), secret, algorithm="HS256")
    now = int(time.time())
    out: dict[str, str] = {
        "alg none": _unsigned({"alg": "none", "typ": "JWT"}, _claims(settings)),
        "alg None": _unsigned({"alg": "None", "typ": "JWT"}, _claims(settings)),
        "alg none with a signature": _unsigned(
            {"alg": "none"}, _claims(settings), valid.split(".")[2]
        ),
        "signature stripped": ".".join(valid.split(".")[:2]) + ".",
        "HS256 signed with the RSA public key (key confusion)": jwt.encode(
            _claims(settings), public, algorithm="HS256"
        )
        if _hmac_with_pem_allowed()
        else _forge(_claims(settings), public),
        "RS256 by another key": jwt.encode(_claims(settings), private, algorithm="RS256"),
        "RS256 with jwk header of the attacker": jwt.encode(
            _claims(settings),
            private,
            algorithm="RS256",
            headers={"jwk": _jwk(public)},
        ),
        "HS256 with jku pointing at loopback": jwt.encode(
            _claims(settings),
            "attacker-secret-of-at-least-32-bytes!!",
            algorithm="HS256",
            headers={"jku": "http://127.0.0.1:9/keys.json", "kid": "../../dev/null"},
        ),
        "HS384 with the right secret": _forge(_claims(settings), secret.encode(), "HS384"),
        "HS512 with the right secret": _forge(_claims(settings), secret.encode(), "HS512"),
        "wrong secret": jwt.encode(_claims(settings), secret + "x", algorithm="HS256"),
        "empty secret": _forge(_claims(settings), b""),
        "wrong issuer": jwt.encode(_claims(settings, iss="evil"), secret, algorithm="HS256"),
        "no issuer": jwt.encode(_claims(settings, iss=None), secret, algorithm="HS256"),
        "wrong audience": jwt.encode(_claims(settings, aud="evil"), secret, algorithm="HS256"),
        "audience list without ours": jwt.encode(
            _claims(settings, aud=["a", "b"]), secret, algorithm="HS256"
        ),
        "no audience": jwt.encode(_claims(settings, aud=None), secret, algorithm="HS256"),
        "expired": jwt.encode(_claims(settings, exp=now - 60), secret, algorithm="HS256"),
        "no exp": jwt.encode(_claims(settings, exp=None), secret, algorithm="HS256"),
        "exp as text": jwt.encode(_claims(settings, exp="never"), secret, algorithm="HS256"),
        "not valid before an hour from now": jwt.encode(
            _claims(settings, nbf=now + 3600), secret, algorithm="HS256"
        ),
        "tampered userId": _tamper(valid, userId="alice"),
        "tampered role": _tamper(valid, role="admin"),
        "tampered exp": _tamper(
            jwt.encode(_claims(settings, exp=now - 60), secret, algorithm="HS256"),
            exp=now + 3600,
        ),
        "tampered header alg": ".".join(
            [_b64(json.dumps({"alg": "HS512", "typ": "JWT"}).encode()), *valid.split(".")[1:]]
        ),
        "userId missing": jwt.encode(_claims(settings, userId=None), secret, algorithm="HS256"),
        "userId an object": jwt.encode(
            _claims(settings, userId={"$ne": ""}), secret, algorithm="HS256"
        ),
        "userId a list": jwt.encode(_claims(settings, userId=["alice"]), secret, algorithm="HS256"),
        "userId true": jwt.encode(_claims(settings, userId=True), secret, algorithm="HS256"),
        "userId empty": jwt.encode(_claims(settings, userId=""), secret, algorithm="HS256"),
        "userId with NUL": jwt.encode(
            _claims(settings, userId="a\x00b"), secret, algorithm="HS256"
        ),
        "userId of 10,000 characters": jwt.encode(
            _claims(settings, userId="a" * 10_000), secret, algorithm="HS256"
        ),
        "stream token of another job": stream.mint_stream_token(
            settings, Principal("mallory", role="admin"), uuid.uuid4()
        ),
        "garbage": "not.a.jwt",
        "two dots only": "..",
        "non-ASCII": "é.é.é",
        "60 KB of base64": _b64(b"x" * 45_000),
    }
    return out


def _jwk(public_pem: bytes) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256)
    return dict(json.loads(algorithm.to_jwk(algorithm.prepare_key(public_pem))))


def _hmac_with_pem_allowed() -> bool:
    """PyJWT refuses to HMAC-sign with a PEM key (it guards against this attack itself)."""
    return False


def _forge(claims: dict[str, Any], key: bytes, alg: str = "HS256") -> str:
    """Sign HMAC by hand with any key (PyJWT will not use a PEM, empty or short key)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    mac = hmac.new(key, f"{header}.{payload}".encode(), digest).digest()
    return f"{header}.{payload}.{_b64(mac)}"


Request = Callable[[httpx.AsyncClient, str], Any]


async def _status(http: httpx.AsyncClient, token: str, job: str) -> int:
    headers = {"Authorization": f"Bearer {token}".encode()}
    return (await http.get(f"{API}/jobs/{job}", headers=headers)).status_code


async def _list(http: httpx.AsyncClient, token: str, job: str) -> int:
    headers = {"Authorization": f"Bearer {token}".encode()}
    return (await http.get(f"{API}/jobs", headers=headers)).status_code


async def _submit(http: httpx.AsyncClient, token: str, job: str) -> int:
    headers = {"Authorization": f"Bearer {token}".encode()}
    body = {"type": "test", "data": {}}
    return (await http.post(f"{API}/analyze", json=body, headers=headers)).status_code


async def _sse_query(http: httpx.AsyncClient, token: str, job: str) -> int:
    url = f"{API}/jobs/{job}/events"
    async with http.stream("GET", url, params={"token": token}) as response:
        return response.status_code


async def _sse_bearer(http: httpx.AsyncClient, token: str, job: str) -> int:
    url = f"{API}/jobs/{job}/events"
    headers = {"Authorization": f"Bearer {token}".encode()}
    async with http.stream("GET", url, headers=headers) as response:
        return response.status_code


async def _feed(http: httpx.AsyncClient, token: str, job: str) -> int:
    async with http.stream("GET", f"{API}/events", params={"token": token}) as response:
        return response.status_code


async def _websocket(http: httpx.AsyncClient, token: str, job: str) -> int:
    url = str(http.base_url).replace("http://", "ws://") + f"{API}/ws/jobs/{job}"
    try:
        async with websockets.connect(
            url + "?" + str(httpx.QueryParams({"token": token, "last_event_id": "0"})),
            open_timeout=10,
        ) as socket:
            await socket.recv()
            return 101
    except websockets.InvalidStatus as exc:
        return int(exc.response.status_code)
    except websockets.ConnectionClosed as exc:
        return 4000 + (exc.rcvd.code if exc.rcvd else 0)


PROBES = {
    "GET /jobs/{id}": _status,
    "GET /jobs": _list,
    "POST /analyze": _submit,
    "SSE ?token=": _sse_query,
    "SSE bearer": _sse_bearer,
    "SSE feed ?token=": _feed,
    "WebSocket ?token=": _websocket,
}


@pytest.fixture(scope="module")
def victim_job(server: ApiServer, sec_settings: Settings) -> str:
    headers = jobs.auth(sec_settings, "alice")
    response = httpx.post(
        f"{server.url}{API}/analyze",
        json={"type": "test", "data": {"sleep_s": 0}},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


async def test_every_attack_is_refused_everywhere(
    http: httpx.AsyncClient, sec_settings: Settings, sec_database_url: str, victim_job: str
) -> None:
    valid_admin = jobs.bearer(sec_settings, "admin-control", role="admin")
    for name, probe in PROBES.items():
        if name == "POST /analyze":
            continue  # the control for submissions would add a job: checked below
        assert await probe(http, valid_admin, victim_job) in (200, 101), name
    with jobs.connect(sec_database_url) as conn:
        before = conn.execute("SELECT count(*) AS n FROM analyses").fetchone()

    outcomes: dict[tuple[str, str], int] = {}
    for attack, token in attacks(sec_settings, victim_job).items():
        for name, probe in PROBES.items():
            outcomes[(attack, name)] = await probe(http, token, victim_job)

    with jobs.connect(sec_database_url) as conn:
        after = conn.execute("SELECT count(*) AS n FROM analyses").fetchone()
    refused = {key: status for key, status in outcomes.items() if status in (401, 404, 414, 431)}
    accepted = {key: status for key, status in outcomes.items() if key not in refused}
    # a WebSocket refused before its handshake is a 403 at the HTTP level (ASGI's close)
    accepted = {
        key: status
        for key, status in accepted.items()
        if not (key[1].startswith("WebSocket") and status == 403)
    }
    assert not accepted, accepted
    assert before == after
    figures.record(
        "security",
        f"JWT: {len(outcomes) // len(PROBES)} forged/stale tokens x {len(PROBES)} entry points"
        f" = {len(outcomes)} requests, all refused (401; WebSocket: closed before accept)",
    )


async def test_a_stream_token_opens_only_its_own_job(
    http: httpx.AsyncClient, sec_settings: Settings, auth: Any, victim_job: str
) -> None:
    other = await jobs.submit(http, sec_settings, "mallory", {"sleep_s": 0})
    token = httpx.URL(other["events_url"]).params["token"]
    assert await _sse_query(http, token, str(other["job_id"])) == 200
    assert await _sse_query(http, token, victim_job) in (401, 404)
    assert await _websocket(http, token, victim_job) in (401, 403, 404)
    assert await _feed(http, token, victim_job) == 401
    assert await _status(http, token, str(other["job_id"])) == 401
    tampered = _tamper(token, job_id=victim_job)
    assert await _sse_query(http, tampered, victim_job) == 401
