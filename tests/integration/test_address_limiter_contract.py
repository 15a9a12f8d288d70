"""The AddressLimiter contract against Redis, and what it leaves behind there."""

from __future__ import annotations

from typing import Any

import pytest
from redis import Redis as SyncRedis

from hermes.adapters.redis.address_limiter import RedisAddressLimiter
from tests.contracts.address_limits import AddressLimiterContract, an_address


class TestRedisAddressLimiter(AddressLimiterContract):
    @pytest.fixture
    def address_limiter(self, redis: Any) -> RedisAddressLimiter:
        return RedisAddressLimiter(redis)

    async def test_one_small_key_per_address_and_minute_that_expires(
        self, address_limiter: RedisAddressLimiter, redis_client: SyncRedis
    ) -> None:
        address = an_address()
        for _ in range(30):
            await address_limiter.hit("register", address, 20)
        keys = list(redis_client.scan_iter(match=f"addrlimit:{{register:{address}}}:*"))
        assert len(keys) == 1
        assert int(redis_client.get(keys[0]) or 0) == 30
        assert 60 < redis_client.ttl(keys[0]) <= 120
