"""The client's address behind reverse proxies (``BI_TRUSTED_PROXIES``: IPs or CIDRs).

``X-Forwarded-For`` is believed only when the direct peer is a trusted proxy, and then by
the rightmost-untrusted rule: walking the list from the right (the hop our own proxy
appended) past every trusted proxy, the first address that is not one is the client.
Anything a client wrote further left is never believed. A hop that is not an IP address
ends the walk: the nearest address we could verify is kept.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

from bi_engine.errors import ConfigurationError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    """Parse BI_TRUSTED_PROXIES once; a bad entry is a configuration error at startup."""
    parsed = []
    for entry in trusted:
        try:
            parsed.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ConfigurationError(
                f"BI_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR network"
            ) from None
    return tuple(parsed)


def parse_address(text: str) -> Address | None:
    """``1.2.3.4``, ``1.2.3.4:5678``, ``::1`` or ``[::1]:80`` -> the address (v4-mapped: v4)."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def client_ip(peer: str | None, forwarded: Iterable[str], trusted: Sequence[Network]) -> str | None:
    """The client's address from the peer and every ``X-Forwarded-For`` header value."""
    if not peer or not trusted:
        return peer
    nearest = parse_address(peer)
    if nearest is None or not _trusted(nearest, trusted):
        return peer
    hops = [hop for value in forwarded for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            break
        if not _trusted(address, trusted):
            return str(address)
        nearest = address
    return str(nearest)
