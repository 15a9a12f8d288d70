from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime

import msgspec

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.customers import CustomerCache
from hermes.domain.customer import Customer
from hermes.domain.plan import Plan

CACHE_TTL_SECONDS = 60
log = logging.getLogger("hermes.cache")


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
            c = _decoder.decode(raw if isinstance(raw, bytes) else raw.encode())
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


EVICTIONS_CHANNEL = "hermes:customer-evictions"


class LayeredCustomerCache(CustomerCache):
    """A few seconds of in-process cache in front of the Redis cache.

    Every API request resolves its key; keeping the hottest lookups in process saves a
    Redis round trip on most of them. Evictions (deactivation, key rotation) are
    published to every instance, and an instance that loses its subscription drops its
    whole local layer, so a revoked key stops working everywhere at once, not after the
    local TTL.
    """

    def __init__(self, redis: RedisClient, local_ttl: float = 5.0, max_entries: int = 50_000) -> None:
        self._redis = redis
        self._remote = RedisCustomerCache(redis)
        self._local: dict[str, tuple[float, Customer]] = {}
        self._ttl = local_ttl
        self._max = max_entries
        self._listening = False

    async def get(self, api_key_digest: str) -> Customer | None:
        if self._listening:
            found = self._local.get(api_key_digest)
            if found is not None:
                if found[0] > time.monotonic():
                    return found[1]
                del self._local[api_key_digest]
        customer = await self._remote.get(api_key_digest)
        if customer is not None:
            self._remember(api_key_digest, customer)
        return customer

    async def put(self, api_key_digest: str, customer: Customer) -> None:
        await self._remote.put(api_key_digest, customer)
        self._remember(api_key_digest, customer)

    async def evict(self, api_key_digest: str) -> None:
        self._local.pop(api_key_digest, None)
        await self._remote.evict(api_key_digest)
        async with translate_errors():
            await self._redis.publish(EVICTIONS_CHANNEL, api_key_digest)

    def _remember(self, api_key_digest: str, customer: Customer) -> None:
        if not self._listening:
            return  # without the eviction feed a local copy could outlive a revocation
        if len(self._local) >= self._max:
            self._local.clear()
        self._local[api_key_digest] = (time.monotonic() + self._ttl, customer)

    async def listen(self) -> None:
        """Follow evictions published by every instance; runs for the life of the app."""
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(EVICTIONS_CHANNEL)
                self._listening = True
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        data = message["data"]
                        self._local.pop(data.decode() if isinstance(data, bytes) else str(data), None)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis went away: nothing local can be trusted until we hear again
                log.warning("customer cache lost its eviction feed; local layer disabled until Redis is back")
            finally:
                self._listening = False
                self._local.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(1.0)
