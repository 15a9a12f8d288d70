"""Who is calling: the address per-address limits count, as the socket peer or a trusted proxy reports it."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The proxies whose `X-Forwarded-For` is believed (HERMES_TRUSTED_PROXIES)."""

    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """Comma-separated addresses and CIDR blocks; `ValueError` naming the entry that is neither."""
        networks: list[Network] = []
        for entry in (e.strip() for e in text.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"HERMES_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR block") from None
        return cls(tuple(networks))

    def trust(self, address: Address) -> bool:
        return any(address in network for network in self.networks)


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("["):  # "[2001:db8::1]:443"
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:  # "203.0.113.7:51234"
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: TrustedProxies) -> str:
    """The caller's address.

    The socket's peer, unless the peer is a trusted proxy: then `X-Forwarded-For`
    (every such header, in order) is read from the right, each trusted proxy's hop
    skipped, and the first hop that is not a trusted proxy is the caller. Hops left
    of it were written by the caller and are never believed. When every hop is a
    trusted proxy the leftmost one is the caller; a hop that is not an address ends
    the walk at the last address read.
    """
    found = _address(peer or "")
    if found is None:
        return peer or "unknown"
    if not trusted.trust(found):
        return str(found)
    hops: Sequence[str] = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        found = address
        if not trusted.trust(address):
            break
    return str(found)


def scope_client_address(scope: Any, trusted: TrustedProxies) -> str:
    """`client_address` of an ASGI HTTP scope."""
    client = scope.get("client")
    peer = client[0] if client else None
    headers = [value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"x-forwarded-for"]
    return client_address(peer, headers, trusted)
