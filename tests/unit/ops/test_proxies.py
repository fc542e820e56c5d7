"""The client's address behind proxies: X-Forwarded-For only from BI_TRUSTED_PROXIES."""

from __future__ import annotations

import pytest

from bi_engine.api import proxies
from bi_engine.errors import ConfigurationError

pytestmark = pytest.mark.unit

TRUSTED = proxies.networks(("10.0.0.0/8", "192.0.2.7", "fd00::/8"))


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert proxies.client_ip("203.0.113.5", ["198.51.100.1"], ()) == "203.0.113.5"


def test_an_untrusted_peer_cannot_claim_another_address() -> None:
    assert proxies.client_ip("203.0.113.5", ["198.51.100.1"], TRUSTED) == "203.0.113.5"


def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() -> None:
    # the client wrote "6.6.6.6" itself; our proxies appended the rest
    forwarded = ["6.6.6.6, 198.51.100.1", "10.1.2.3"]
    assert proxies.client_ip("192.0.2.7", forwarded, TRUSTED) == "198.51.100.1"


def test_cidr_ranges_and_ipv6_are_trusted_hops() -> None:
    assert proxies.client_ip("fd00::1", ["2001:db8::9, 10.0.0.2"], TRUSTED) == "2001:db8::9"


def test_ports_brackets_and_mapped_addresses_are_understood() -> None:
    assert proxies.client_ip("10.0.0.1", ["198.51.100.1:5555"], TRUSTED) == "198.51.100.1"
    assert proxies.client_ip("10.0.0.1", ["[2001:db8::1]:443"], TRUSTED) == "2001:db8::1"
    assert proxies.client_ip("::ffff:10.0.0.1", ["198.51.100.2"], TRUSTED) == "198.51.100.2"


def test_garbage_ends_the_walk_at_the_nearest_verified_address() -> None:
    assert proxies.client_ip("10.0.0.1", ["198.51.100.1, evil, 10.0.0.9"], TRUSTED) == "10.0.0.9"
    assert proxies.client_ip("10.0.0.1", ["not-an-ip"], TRUSTED) == "10.0.0.1"


def test_only_trusted_hops_leave_the_leftmost_one() -> None:
    assert proxies.client_ip("10.0.0.1", ["10.0.0.3, 10.0.0.2"], TRUSTED) == "10.0.0.3"
    assert proxies.client_ip("10.0.0.1", [], TRUSTED) == "10.0.0.1"


def test_a_bad_configuration_entry_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="BI_TRUSTED_PROXIES"):
        proxies.networks(("10.0.0.0/8", "proxy.internal"))
