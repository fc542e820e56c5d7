"""Callback signatures and the SSRF guard."""

from __future__ import annotations

import pytest

from bi_engine.webhooks import guard, signing

pytestmark = pytest.mark.unit


def fixed(*addresses: str) -> guard.Resolver:
    return lambda _host, _port: list(addresses)


def test_signature_round_trip_and_tamper() -> None:
    body = b'{"job_id": "x"}'
    header = signing.sign("s3cret", body, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert signing.verify("s3cret", body, header, now=1_700_000_010)
    assert not signing.verify("s3cret", body + b" ", header, now=1_700_000_010)
    assert not signing.verify("other", body, header, now=1_700_000_010)
    assert not signing.verify("s3cret", body, header, now=1_700_009_999)
    assert not signing.verify("s3cret", body, "garbage", now=1_700_000_010)


def test_signature_is_hmac_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    header = signing.sign("k", b"abc", timestamp=42)
    expected = hmac.new(b"k", b"42.abc", hashlib.sha256).hexdigest()
    assert header == f"t=42,v1={expected}"


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("http://169.254.169.254/latest/meta-data", ("169.254.169.254",)),
        ("http://metadata.google.internal/computeMetadata", ("169.254.169.254",)),
        ("http://innocent.example/x", ("169.254.169.254",)),
        ("http://localhost:8000/x", ("127.0.0.1",)),
        ("http://rebind.example/x", ("93.184.216.34", "127.0.0.1")),
        ("http://linklocal.example/x", ("169.254.10.1",)),
        ("http://v6.example/x", ("::1",)),
        ("http://v6mapped.example/x", ("::ffff:127.0.0.1",)),
        ("http://private.example/x", ("10.1.2.3",)),
        ("http://zero.example/x", ("0.0.0.0",)),
    ],
)
def test_non_public_targets_are_refused(url: str, addresses: tuple[str, ...]) -> None:
    with pytest.raises(guard.UnsafeCallbackURL):
        guard.check_url(url, resolver=fixed(*addresses))


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "http://u:p@example.com/",
    ],
)
def test_bad_schemes_and_credentials_are_refused(url: str) -> None:
    with pytest.raises(guard.UnsafeCallbackURL):
        guard.check_url(url, resolver=fixed("93.184.216.34"))


def test_public_hosts_pass_and_return_their_addresses() -> None:
    assert guard.check_url("https://hooks.example.com/bi", resolver=fixed("93.184.216.34")) == [
        "93.184.216.34"
    ]


def test_allow_list_admits_internal_services_but_never_metadata() -> None:
    url = "http://backend-dev:3001/hooks/bi"
    with pytest.raises(guard.UnsafeCallbackURL):
        guard.check_url(url, resolver=fixed("172.18.0.5"))
    assert guard.check_url(url, ["backend-dev"], resolver=fixed("172.18.0.5")) == ["172.18.0.5"]
    with pytest.raises(guard.UnsafeCallbackURL):
        guard.check_url(url, ["backend-dev"], resolver=fixed("169.254.169.254"))


def test_unresolvable_host_is_refused() -> None:
    def broken(_host: str, _port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(guard.UnsafeCallbackURL, match="does not resolve"):
        guard.check_url("http://nowhere.invalid/x", resolver=broken)
