"""Who the caller is (client address behind proxies) and how many requests an address gets per minute."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hermes.adapters.memory.address_limiter import InMemoryAddressLimiter
from hermes.application.use_cases.admit_anonymous_caller import AdmitAnonymousCaller
from hermes.domain.address_limits import AddressBucket, AddressLimits, Window, limit_key
from hermes.domain.errors import RateLimited
from hermes.entrypoints.http.client_address import TrustedProxies, client_address, scope_client_address
from tests.contracts.address_limits import AddressLimiterContract
from tests.support import make_settings

PROXIES = TrustedProxies.parse("10.0.0.0/8, 192.0.2.1, 2001:db8:ffff::/48")


def test_a_direct_callers_forwarded_for_is_ignored() -> None:
    assert client_address("203.0.113.9", ["198.51.100.1"], PROXIES) == "203.0.113.9"
    assert client_address("203.0.113.9", ["198.51.100.1"], TrustedProxies()) == "203.0.113.9"


def test_with_no_trusted_proxies_even_loopback_is_the_caller() -> None:
    assert client_address("127.0.0.1", ["198.51.100.1"], TrustedProxies()) == "127.0.0.1"


def test_behind_a_trusted_proxy_the_first_untrusted_hop_from_the_right_is_the_caller() -> None:
    # The caller wrote "1.1.1.1, 2.2.2.2" itself; the proxies appended its real address and their own.
    hops = ["1.1.1.1, 2.2.2.2", "203.0.113.9, 10.1.2.3"]
    assert client_address("192.0.2.1", hops, PROXIES) == "203.0.113.9"


def test_when_every_hop_is_a_proxy_the_leftmost_is_the_caller() -> None:
    assert client_address("10.0.0.1", ["10.0.0.5, 10.0.0.6"], PROXIES) == "10.0.0.5"
    assert client_address("10.0.0.1", [], PROXIES) == "10.0.0.1"


def test_garbage_in_forwarded_for_stops_the_walk_at_the_last_address_read() -> None:
    assert client_address("10.0.0.1", ["not-an-ip, 10.0.0.7"], PROXIES) == "10.0.0.7"
    assert client_address("10.0.0.1", ["evil"], PROXIES) == "10.0.0.1"


def test_ports_brackets_and_mapped_addresses_are_read() -> None:
    assert client_address("::ffff:192.0.2.1", ["203.0.113.9:5123"], PROXIES) == "203.0.113.9"
    assert client_address("10.0.0.1", ["[2001:db8::7]:443"], PROXIES) == "2001:db8::7"
    assert client_address("2001:db8:ffff::1", ["2001:db8:1::9"], PROXIES) == "2001:db8:1::9"


def test_a_scope_is_read_with_every_forwarded_for_header() -> None:
    scope = {
        "client": ("192.0.2.1", 50000),
        "headers": [(b"x-forwarded-for", b"6.6.6.6"), (b"host", b"x"), (b"x-forwarded-for", b"203.0.113.9")],
    }
    assert scope_client_address(scope, PROXIES) == "203.0.113.9"
    assert scope_client_address({"headers": []}, PROXIES) == "unknown"


def test_trusted_proxies_that_do_not_parse_are_named() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        TrustedProxies.parse("10.0.0.1, 10.0.0.300")


def test_ipv6_callers_are_counted_by_their_64() -> None:
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert limit_key("203.0.113.9") == "203.0.113.9"
    assert limit_key("::ffff:203.0.113.9") == "203.0.113.9"


async def test_an_address_gets_its_limit_per_bucket_then_429_with_a_wait() -> None:
    admit = AdmitAnonymousCaller(
        InMemoryAddressLimiter(), AddressLimits({AddressBucket.REGISTER: [Window(3)], AddressBucket.OAUTH: [Window(5)]})
    )
    for _ in range(3):
        await admit(AddressBucket.REGISTER, "203.0.113.9")
    with pytest.raises(RateLimited) as refused:
        await admit(AddressBucket.REGISTER, "203.0.113.9")
    assert 1 <= refused.value.retry_after <= 60
    assert "at most 3 a minute" in refused.value.detail
    await admit(AddressBucket.REGISTER, "203.0.113.10")  # another address has its own count
    for _ in range(5):
        await admit(AddressBucket.OAUTH, "203.0.113.9")  # and so has another bucket
    with pytest.raises(RateLimited):
        await admit(AddressBucket.OAUTH, "203.0.113.9")


async def test_a_request_must_fit_every_window_of_its_bucket() -> None:
    windows = [Window(5), Window(2, 86400)]
    admit = AdmitAnonymousCaller(InMemoryAddressLimiter(), AddressLimits({AddressBucket.REGISTER: windows}))
    for _ in range(2):
        await admit(AddressBucket.REGISTER, "203.0.113.9")
    with pytest.raises(RateLimited) as refused:
        await admit(AddressBucket.REGISTER, "203.0.113.9")
    assert "at most 2 a day" in refused.value.detail
    assert refused.value.retry_after > 60


async def test_the_in_process_counters_stay_bounded() -> None:
    limiter = InMemoryAddressLimiter(max_counters=100)
    for i in range(1000):
        await limiter.hit("oauth", f"198.51.{i // 256}.{i % 256}", 5)
    assert len(limiter._counts) <= 100


class TestInMemoryAddressLimiter(AddressLimiterContract):
    @pytest.fixture
    def address_limiter(self) -> InMemoryAddressLimiter:
        return InMemoryAddressLimiter()


def test_settings_refuse_trusted_proxies_that_do_not_parse() -> None:
    with pytest.raises(ValidationError, match="not-a-network"):
        make_settings(HERMES_TRUSTED_PROXIES="10.0.0.0/8, not-a-network")
    assert make_settings(HERMES_TRUSTED_PROXIES="10.0.0.0/8, ::1").trusted_proxies == "10.0.0.0/8, ::1"
