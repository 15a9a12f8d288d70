"""The SSRF guard: which addresses are refused, and how refusals read (resolver faked, no network)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

import pytest

from hermes.adapters.platforms.network import (
    HostGuard,
    Resolver,
    UnresolvableHost,
    UnsafeHost,
    blocked_reason,
    system_resolver,
)
from hermes.domain.errors import Invalid, PlatformRejected
from tests.unit.platforms.scripted import shown


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.1.2", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # AWS/GCP/Azure metadata
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.100.100.200", "carrier-grade NAT"),  # Alibaba Cloud metadata
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address under test, not a bind
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
        ("192.0.2.10", "reserved"),
        ("198.18.0.1", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd00:ec2::254", "private"),  # AWS metadata over IPv6
        ("ff02::1", "multicast"),
        ("2001:db8::1", "reserved"),
        ("::127.0.0.1", "reserved"),  # deprecated IPv4-compatible form
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.1.2.3", "private"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("64:ff9b:1::1", "private"),
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    why = blocked_reason(ipaddress.ip_address(address))
    assert why is not None
    assert reason in why


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "142.250.74.46",
        "172.32.0.1",  # just outside 172.16/12
        "100.128.0.1",  # just outside 100.64/10
        "2606:4700:4700::1111",
        "2a00:1450:4001:830::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


def resolver_of(answers: dict[str, Sequence[str]]) -> Resolver:
    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    return resolve


async def test_a_public_name_is_vetted_with_every_address() -> None:
    guard = HostGuard(False, resolver=resolver_of({"smtp.example.com": ["203.0.114.7", "2a00:1450::1", "203.0.114.7"]}))
    vetted = await guard.vet("SMTP.Example.com.", 587, field="smtpHost")
    assert vetted.name == "smtp.example.com"
    assert vetted.addresses == ("203.0.114.7", "2a00:1450::1")


async def test_one_private_address_among_public_ones_refuses_the_host() -> None:
    # A name answering both a public and an internal address is refused outright, not filtered.
    guard = HostGuard(False, resolver=resolver_of({"mail.example.com": ["203.0.114.7", "10.0.0.8"]}))
    with pytest.raises(UnsafeHost) as caught:
        await guard.vet("mail.example.com", 993, field="imapHost")
    error = caught.value
    assert isinstance(error, Invalid)
    assert error.fields == {"imapHost": "resolves to a private address (10.0.0.8)"}
    assert "imapHost mail.example.com resolves to a private address" in error.detail


async def test_a_name_pointing_at_the_metadata_service_is_refused() -> None:
    guard = HostGuard(False, resolver=resolver_of({"evil.example.net": ["169.254.169.254"]}))
    with pytest.raises(UnsafeHost) as caught:
        await guard.vet("evil.example.net", 80, field="apiUrl")
    assert "link-local" in caught.value.fields["apiUrl"]


async def test_mapped_ipv6_answers_are_judged_by_their_ipv4() -> None:
    guard = HostGuard(False, resolver=resolver_of({"sneaky.example.net": ["::ffff:127.0.0.1"]}))
    with pytest.raises(UnsafeHost, match="loopback"):
        await guard.vet("sneaky.example.net", 443, field="apiUrl")


async def test_private_addresses_are_allowed_when_the_deployment_says_so() -> None:
    guard = HostGuard(True, resolver=resolver_of({"mail.lan": ["192.168.1.20", "fe80::1%eth0"]}))
    vetted = await guard.vet("mail.lan", 25, field="smtpHost")
    assert vetted.addresses == ("192.168.1.20", "fe80::1%eth0")


async def test_bracketed_ipv6_literals_are_unwrapped() -> None:
    seen: list[str] = []

    async def resolve(host: str, port: int) -> Sequence[str]:
        seen.append(host)
        return ["2a00:1450::1"]

    vetted = await HostGuard(False, resolver=resolve).vet("[2a00:1450::1]", 443, field="apiUrl")
    assert seen == ["2a00:1450::1"]
    assert vetted.addresses == ("2a00:1450::1",)


async def test_unknown_names_and_slow_resolvers_are_unresolvable() -> None:
    guard = HostGuard(False, resolver=resolver_of({}))
    with pytest.raises(UnresolvableHost) as caught:
        await guard.vet("nope.invalid", 587, field="smtpHost")
    assert caught.value.fields == {"smtpHost": "does not resolve to an address"}

    async def slow(host: str, port: int) -> Sequence[str]:
        await asyncio.sleep(5)
        return ["203.0.114.7"]

    with pytest.raises(UnresolvableHost, match="in time"):
        await HostGuard(False, timeout=0.05, resolver=slow).vet("slow.example.com", 587, field="smtpHost")


async def test_literals_and_odd_spellings_of_loopback_are_refused_by_the_system_resolver() -> None:
    # getaddrinfo turns numeric forms into addresses without DNS; the guard judges what they became.
    guard = HostGuard(False, resolver=system_resolver)
    for host in ("127.0.0.1", "2130706433", "0x7f.1", "::1", "0.0.0.0"):  # noqa: S104 - not a bind
        with pytest.raises(UnsafeHost):
            await guard.vet(host, 25, field="smtpHost")


def test_refusals_at_tool_time_say_how_to_fix_them() -> None:
    unsafe = UnsafeHost("smtpHost", "mail.internal", "resolves to a private address (10.0.0.8)").as_platform_error(
        "email"
    )
    assert isinstance(unsafe, PlatformRejected)
    assert unsafe.reconnect
    assert unsafe.code == "unsafe_host"
    assert "Ask the account owner to reconnect Email in Hermes with a public smtpHost." in shown(unsafe)

    dns = UnresolvableHost("apiUrl", "gone.example.com", "does not resolve to an address").as_platform_error("obsidian")
    assert dns.code == "dns_error"
    assert "apiUrl gone.example.com does not resolve" in shown(dns)
