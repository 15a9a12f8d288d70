from __future__ import annotations

from datetime import datetime

import msgspec

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.customers import CustomerCache
from hermes.domain.customer import Customer
from hermes.domain.plan import Plan

CACHE_TTL_SECONDS = 60


class _CachedCustomer(msgspec.Struct, array_like=True):
    id: str
    email: str
    plan: str
    active: bool
    created_at: datetime
    api_key_prefix: str


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_CachedCustomer)


def cache_key(api_key_digest: str) -> str:
    return f"customer:apikey:{{{api_key_digest}}}"


class RedisCustomerCache(CustomerCache):
    """`customer:apikey:{digest}` -> the customer, SETEX 60 s (seed flow 2)."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def get(self, api_key_digest: str) -> Customer | None:
        async with translate_errors():
            raw = await self._redis.get(cache_key(api_key_digest))
        if raw is None:
            return None
        try:
            c = _decoder.decode(raw)
        except msgspec.DecodeError:
            return None  # an entry from another version: treat as a miss
        return Customer(c.id, c.email, Plan(c.plan), c.active, c.created_at, c.api_key_prefix)

    async def put(self, api_key_digest: str, customer: Customer) -> None:
        value = _encoder.encode(
            _CachedCustomer(
                customer.id,
                customer.email,
                customer.plan.value,
                customer.active,
                customer.created_at,
                customer.api_key_prefix,
            )
        )
        async with translate_errors():
            # SET ... EX is SETEX (seed flow 2) in the form redis-py no longer deprecates.
            await self._redis.set(cache_key(api_key_digest), value, ex=CACHE_TTL_SECONDS)

    async def evict(self, api_key_digest: str) -> None:
        async with translate_errors():
            await self._redis.delete(cache_key(api_key_digest))
