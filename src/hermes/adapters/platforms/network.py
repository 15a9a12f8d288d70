"""The SSRF guard for hosts and URLs that customers supply (SMTP and IMAP hosts, the Obsidian API URL).

A customer who may name any host could make Hermes talk to its own neighbours: the
cloud metadata service (169.254.169.254), Redis or the database on the private
network, an admin port on loopback. So every customer-supplied host is resolved
first (all of its addresses) and refused when any address is not a public unicast
one, unless the deployment sets `HERMES_ALLOW_PRIVATE_NETWORKS=true` (tests, or a
single-user install whose mail server lives on the LAN).

Checking a name and then letting a library resolve it again would leave a DNS
rebinding window (a name that answers a public address to the check and 127.0.0.1
to the connection). The callers therefore connect to the addresses checked here:
`connect_tcp` opens the socket to a vetted address and SMTP/IMAP run over it with
the original name kept for TLS (SNI and certificate checks); the Obsidian client
puts the vetted address in the URL and the name in `Host` and the TLS server name.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from hermes.domain.errors import Actor, Invalid, PlatformRejected, Sent, display_name

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Why each non-public range is refused. Listed explicitly rather than read off
# `ipaddress`'s is_private/is_global, whose answers differ between Python versions.
_BLOCKED_V4: tuple[tuple[_V4, str], ...] = (
    (_V4("0.0.0.0/8"), "an unspecified address"),
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("100.64.0.0/10"), "a carrier-grade NAT address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("169.254.0.0/16"), "a link-local address (cloud metadata lives there)"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.0.0.0/24"), "a reserved address"),
    (_V4("192.0.2.0/24"), "a reserved address"),
    (_V4("192.88.99.0/24"), "a reserved address"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V4("198.18.0.0/15"), "a reserved address"),
    (_V4("198.51.100.0/24"), "a reserved address"),
    (_V4("203.0.113.0/24"), "a reserved address"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("240.0.0.0/4"), "a reserved address"),
)
_BLOCKED_V6: tuple[tuple[_V6, str], ...] = (
    (_V6("::/128"), "an unspecified address"),
    (_V6("::1/128"), "a loopback address"),
    (_V6("64:ff9b:1::/48"), "a private address"),  # local-use NAT64 (RFC 8215), inside ::/8
    (_V6("::/8"), "a reserved address"),
    (_V6("100::/64"), "a reserved address"),
    (_V6("2001::/23"), "a reserved address"),
    (_V6("2001:db8::/32"), "a reserved address"),
    (_V6("fc00::/7"), "a private address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("fec0::/10"), "a private address"),
    (_V6("ff00::/8"), "a multicast address"),
)
_NAT64 = _V6("64:ff9b::/96")


def blocked_reason(ip: IPAddress) -> str | None:
    """Why Hermes refuses to connect to `ip` ("a private address", ...), or None for a public address.

    IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`, NAT64
    `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) are judged by that IPv4 address,
    since that is where the packets end up.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return blocked_reason(embedded)
        return next((why for net, why in _BLOCKED_V6 if ip in net), None)
    if ip == ipaddress.IPv4Address("255.255.255.255"):
        return "a broadcast address"
    return next((why for net, why in _BLOCKED_V4 if ip in net), None)


class UnsafeHost(Invalid):
    """A customer-supplied host that Hermes will not connect to (private, loopback, metadata, ...).

    An `Invalid` naming the credential field, which is what connecting with
    `?verify=true` reports; at tool time the plugins turn it into `as_platform_error`.
    """

    def __init__(self, field: str, host: str, reason: str) -> None:
        super().__init__(f"{field} {host} {reason}; Hermes only connects to public hosts", {field: reason})
        self.field = field
        self.host = host
        self.reason = reason

    def as_platform_error(self, platform: str) -> PlatformRejected:
        return PlatformRejected(
            platform,
            self.detail,
            code="unsafe_host",
            reconnect=True,
            fix=f"reconnect {display_name(platform)} in Hermes with a public {self.field}",
            sent=Sent.NO,
        )


class UnresolvableHost(Invalid):
    """The host name does not resolve (or the resolver did not answer in time)."""

    def __init__(self, field: str, host: str, why: str) -> None:
        super().__init__(f"{field} {host} {why}", {field: why})
        self.field = field
        self.host = host

    def as_platform_error(self, platform: str) -> PlatformRejected:
        return PlatformRejected(
            platform,
            self.detail,
            code="dns_error",
            actor=Actor.OWNER,
            fix=f"check {self.field} and reconnect {display_name(platform)} in Hermes if it is wrong; "
            "otherwise try again later",
            sent=Sent.NO,
        )


@dataclass(frozen=True, slots=True)
class VettedHost:
    """A host name and the addresses it resolved to, each checked: connect to these, not to the name."""

    name: str
    addresses: tuple[str, ...]


async def system_resolver(host: str, port: int) -> Sequence[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def bare_host(host: str) -> str:
    """`[::1]` -> `::1`: URL-style brackets are not part of the address."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


@dataclass(frozen=True, slots=True)
class HostGuard:
    """Resolves customer-supplied hosts and refuses non-public ones (unless `allow_private`)."""

    allow_private: bool
    timeout: float = 5.0
    resolver: Resolver = system_resolver

    async def vet(self, host: str, port: int, *, field: str) -> VettedHost:
        """Every address `host` resolves to, all of them public; else `UnsafeHost`/`UnresolvableHost`."""
        name = bare_host(host.strip()).rstrip(".").lower()
        if not name:
            raise UnresolvableHost(field, host, "is empty")
        try:
            async with asyncio.timeout(self.timeout):
                found = await self.resolver(name, port)
        except TimeoutError:
            raise UnresolvableHost(field, host, "could not be resolved in time") from None
        except (OSError, UnicodeError) as exc:
            raise UnresolvableHost(field, host, "does not resolve to an address") from exc
        addresses: list[str] = []
        for raw in found:
            # getaddrinfo may append a scope ("fe80::1%eth0"); the address is what is judged.
            ip = ipaddress.ip_address(raw.split("%", 1)[0])
            reason = None if self.allow_private else blocked_reason(ip)
            if reason is not None:
                raise UnsafeHost(field, host, f"resolves to {reason} ({ip})")
            if raw not in addresses:
                addresses.append(raw)
        if not addresses:
            raise UnresolvableHost(field, host, "does not resolve to an address")
        return VettedHost(name, tuple(addresses))


async def connect_tcp(host: VettedHost, port: int, timeout: float) -> socket.socket:
    """A connected, non-blocking socket to the first vetted address that answers.

    Each address gets `timeout` seconds; the caller's overall deadline bounds the
    sum. The last connection error is raised when none answers.
    """
    loop = asyncio.get_running_loop()
    last: OSError = OSError(f"no address to connect to for {host.name}")
    for address in host.addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (address, port))
        except TimeoutError:
            sock.close()
            last = TimeoutError(f"connecting to {host.name} port {port} timed out")
        except OSError as exc:
            sock.close()
            last = exc
        except BaseException:
            sock.close()
            raise
        else:
            return sock
    raise last


def close_quietly(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()
