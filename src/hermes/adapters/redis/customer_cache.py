from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
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


# How long an eviction is remembered: far longer than a request can take between reading the
# generation and writing the cache (requests have deadlines of seconds). Once it is forgotten the
# generation reads "" again, which an older reader's non-empty generation never matches.
GENERATION_TTL_SECONDS = 3600

# Both keys carry the digest as hash tag: one cluster slot, one atomic step.
_PUT = """
local current = redis.call('GET', KEYS[2]) or ''
if current ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""
_EVICT = """
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
redis.call('DEL', KEYS[1])
return 1
"""


def cache_key(api_key_digest: str) -> str:
    return f"customer:apikey:{{{api_key_digest}}}"


def generation_key(api_key_digest: str) -> str:
    return f"customer:evicted:{{{api_key_digest}}}"


class RedisCustomerCache(CustomerCache):
    """`customer:apikey:{digest}` -> the customer, 60 s; `customer:evicted:{digest}` -> a token
    that each eviction replaces, so that a lookup that read the directory before the eviction
    cannot write the customer back after it."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._put = redis.register_script(_PUT)
        self._evict = redis.register_script(_EVICT)

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

    async def generation(self, api_key_digest: str) -> str:
        async with translate_errors():
            value = await self._redis.get(generation_key(api_key_digest))
        return value.decode() if isinstance(value, bytes) else (value or "")

    async def put(self, api_key_digest: str, customer: Customer, generation: str) -> bool:
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
            written = await self._put(
                keys=[cache_key(api_key_digest), generation_key(api_key_digest)],
                args=[value, generation, CACHE_TTL_SECONDS],
            )
        return bool(int(written))

    async def evict(self, api_key_digest: str) -> None:
        async with translate_errors():
            await self._evict(
                keys=[cache_key(api_key_digest), generation_key(api_key_digest)],
                args=[secrets.token_hex(8), GENERATION_TTL_SECONDS],
            )


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

    async def generation(self, api_key_digest: str) -> str:
        return await self._remote.generation(api_key_digest)

    async def put(self, api_key_digest: str, customer: Customer, generation: str) -> bool:
        written = await self._remote.put(api_key_digest, customer, generation)
        if written:
            self._remember(api_key_digest, customer)
        return written

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
