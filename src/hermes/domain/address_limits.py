"""Limits on callers nobody has authenticated yet, counted per client address."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


class AddressBucket(StrEnum):
    """What a limited request is counted against; each bucket has its own limits."""

    REGISTER = "register"
    OAUTH = "oauth"


@dataclass(frozen=True, slots=True)
class Window:
    """At most `limit` requests in each fixed window of `seconds`."""

    limit: int
    seconds: int = 60


@dataclass(frozen=True, slots=True)
class AddressLimits:
    """The windows each bucket's requests are counted in, per client address; a request must fit them all."""

    windows: Mapping[AddressBucket, Sequence[Window]]


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
