"""Limits on callers nobody has authenticated yet, counted per client address and minute."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class AddressBucket(StrEnum):
    """What a limited request is counted against; each bucket has its own per-minute limit."""

    REGISTER = "register"
    OAUTH = "oauth"


@dataclass(frozen=True, slots=True)
class AddressLimits:
    """Requests a client address may make per minute, by bucket."""

    per_minute: Mapping[AddressBucket, int]


def limit_key(address: str) -> str:
    """The unit an address is counted as: itself for IPv4, its /64 for IPv6.

    One IPv6 host is routinely given a whole /64, so counting single IPv6
    addresses would let one machine multiply its limit by 2**64.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
