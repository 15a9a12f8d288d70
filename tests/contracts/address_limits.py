"""The AddressLimiter contract, run against the in-memory adapter (unit) and Redis (integration).

Subclasses provide an `address_limiter` fixture.
"""

from __future__ import annotations

import asyncio
import secrets

from hermes.application.ports.address_limits import AddressLimiter


def an_address() -> str:
    return f"198.51.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}-{secrets.token_hex(4)}"


class AddressLimiterContract:
    async def test_limit_then_wait_until_the_next_minute(self, address_limiter: AddressLimiter) -> None:
        address = an_address()
        assert [await address_limiter.hit("register", address, 3) for _ in range(3)] == [None, None, None]
        wait = await address_limiter.hit("register", address, 3)
        assert wait is not None and 1 <= wait <= 60

    async def test_addresses_and_buckets_are_counted_apart(self, address_limiter: AddressLimiter) -> None:
        address = an_address()
        assert await address_limiter.hit("register", address, 1) is None
        assert await address_limiter.hit("register", address, 1) is not None
        assert await address_limiter.hit("oauth", address, 1) is None
        assert await address_limiter.hit("register", an_address(), 1) is None

    async def test_windows_of_different_lengths_are_counted_apart(self, address_limiter: AddressLimiter) -> None:
        address = an_address()
        assert await address_limiter.hit("register", address, 1, 60) is None
        assert await address_limiter.hit("register", address, 1, 86400) is None
        day = await address_limiter.hit("register", address, 1, 86400)
        assert day is not None and 1 <= day <= 86400

    async def test_concurrent_hits_never_exceed_the_limit(self, address_limiter: AddressLimiter) -> None:
        address = an_address()
        waits = await asyncio.gather(*(address_limiter.hit("oauth", address, 20) for _ in range(50)))
        assert waits.count(None) == 20
