"""The SSRF guard: callbacks go to http(s) hosts that resolve to public addresses only.

Loopback, link-local (169.254.0.0/16, fe80::/10 — cloud metadata lives there), private,
multicast, reserved and unspecified addresses are refused unless the host is listed in
``BI_CALLBACK_ALLOWED_HOSTS`` (e.g. ``backend-dev`` inside the PilotProOS network).
Metadata endpoints are refused even when listed. Every address a name resolves to is
checked, at submit time and again right before each delivery attempt, and deliveries never
follow redirects, so a redirect to an internal address cannot slip past.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from bi_engine.errors import BIError

Resolver = Callable[[str, int], list[str]]
METADATA_HOSTS = frozenset(
    {"169.254.169.254", "fd00:ec2::254", "metadata.google.internal", "metadata", "100.100.100.200"}
)
METADATA_NETS = (
    ipaddress.ip_network("169.254.169.254/32"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


class UnsafeCallbackURL(BIError):
    """callback_url is not allowed: use an http(s) URL of a publicly reachable host."""

    status_code = 422
    code = "unsafe_callback_url"


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _unmapped(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``::ffff:169.254.169.254`` is 169.254.169.254 (metadata checks included)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    # ``is_global`` also excludes the shared range 100.64.0.0/10 (carrier NAT, and where
    # one cloud's metadata service lives), which ``is_private`` does not.
    return address.is_global and not (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def check_url(
    url: str,
    allowed_hosts: Iterable[str] = (),
    resolver: Resolver = system_resolver,
) -> list[str]:
    """Return the addresses ``url`` may be delivered to, or raise :class:`UnsafeCallbackURL`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeCallbackURL("callback_url must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise UnsafeCallbackURL("callback_url must not carry credentials")
    host = parts.hostname.lower().rstrip(".")
    if host in METADATA_HOSTS:
        raise UnsafeCallbackURL(f"callback_url host {host!r} is a cloud metadata endpoint")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise UnsafeCallbackURL(f"callback_url host {host!r} does not resolve") from exc
    if not addresses:
        raise UnsafeCallbackURL(f"callback_url host {host!r} does not resolve")
    allowed = host in {h.lower() for h in allowed_hosts}
    for text in addresses:
        address = _unmapped(ipaddress.ip_address(text.split("%", 1)[0]))
        if any(address in net for net in METADATA_NETS):
            raise UnsafeCallbackURL(f"callback_url host {host!r} resolves to a metadata address")
        if not allowed and not _is_public(address):
            raise UnsafeCallbackURL(
                f"callback_url host {host!r} resolves to a non-public address ({address}); "
                "list it in BI_CALLBACK_ALLOWED_HOSTS if it is your own service"
            )
    return addresses


def check_literal(url: str, allowed_hosts: Iterable[str] = ()) -> None:
    """The part of :func:`check_url` that needs no DNS, for submit time: scheme, credentials,
    metadata names, and hosts written as addresses (also the legacy forms ``2130706433``,
    ``0x7f000001``, ``0177.0.0.1``, ``127.1`` that resolvers accept). Names are resolved and
    checked before each delivery."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeCallbackURL("callback_url must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise UnsafeCallbackURL("callback_url must not carry credentials")
    host = parts.hostname.lower().rstrip(".")
    if host in METADATA_HOSTS:
        raise UnsafeCallbackURL(f"callback_url host {host!r} is a cloud metadata endpoint")
    address = _literal_address(host)
    if address is None:
        return
    if any(address in net for net in METADATA_NETS):
        raise UnsafeCallbackURL(f"callback_url host {host!r} is a metadata address")
    if host not in {h.lower() for h in allowed_hosts} and not _is_public(address):
        raise UnsafeCallbackURL(
            f"callback_url host {host!r} is a non-public address ({address}); "
            "list it in BI_CALLBACK_ALLOWED_HOSTS if it is your own service"
        )


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host written as one stands for (None for a name)."""
    try:
        return _unmapped(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def check_scheme_and_host(url: str) -> None:
    """The cheap part of the check, without DNS (used at submit before the full check)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeCallbackURL("callback_url must be an http:// or https:// URL with a host")
