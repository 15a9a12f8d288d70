from __future__ import annotations

import asyncio
import time

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.metering import RateLimiter, UsageMeter

# Grants up to ARGV[1] of the window's remaining ARGV[2] requests; never more than the limit in total.
_LEASE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used)
if grant <= 0 then return 0 end
redis.call('INCRBY', KEYS[1], grant)
if used == 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return grant
"""
_CONSUME = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return -1 end
n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return n
"""
_USAGE_TTL = 70 * 24 * 3600


class RedisRateLimiter(RateLimiter):
    """Fixed one-minute windows counted atomically in Redis, so every instance shares them.

    Each instance leases a few of a customer's requests at a time (at most a fiftieth of
    the limit, at most `max_lease`) and spends them locally, so most requests cost no Redis
    round trip. Leases are granted atomically and never add up to more than the limit:
    the shared limit is never exceeded; at worst a few requests leased by one instance go
    unused while another is refused, until the next minute.
    """

    def __init__(self, redis: RedisClient, max_lease: int = 50) -> None:
        self._redis = redis
        self._lease = redis.register_script(_LEASE)
        self._max_lease = max_lease
        self._leases: dict[str, tuple[int, int]] = {}  # customer -> (window, requests left)
        self._leasing: dict[str, asyncio.Future[None]] = {}  # one lease request in flight per customer

    def _take(self, customer_id: str, window: int) -> bool:
        held_window, left = self._leases.get(customer_id, (window, 0))
        if held_window == window and left > 0:
            self._leases[customer_id] = (window, left - 1)
            return True
        return False

    async def hit(self, customer_id: str, limit: int) -> float | None:
        now = time.time()
        window = int(now // 60)
        if self._take(customer_id, window):
            return None
        # A burst shares one lease request instead of each request asking Redis.
        while (leasing := self._leasing.get(customer_id)) is not None:
            await asyncio.shield(leasing)
            if self._take(customer_id, window):
                return None
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._leasing[customer_id] = done
        try:
            chunk = max(1, min(self._max_lease, limit // 50))
            async with translate_errors():
                granted = int(
                    await self._lease(keys=[f"ratelimit:{{{customer_id}}}:{window}"], args=[chunk, limit, 120])
                )
            if len(self._leases) > 100_000:
                self._leases.clear()  # old windows' leases are worthless; bound the memory
            held_window, left = self._leases.get(customer_id, (window, 0))
            self._leases[customer_id] = (window, (left if held_window == window else 0) + granted)
        finally:
            del self._leasing[customer_id]
            done.set_result(None)
        if self._take(customer_id, window):
            return None
        return max(1.0, (window + 1) * 60 - now)


class RedisUsageMeter(UsageMeter):
    """`usage:{cust}:{YYYY-MM}`: tool calls this month, never above the quota."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._consume = redis.register_script(_CONSUME)

    async def consume(self, customer_id: str, month: str, limit: int) -> int | None:
        async with translate_errors():
            count = int(await self._consume(keys=[f"usage:{{{customer_id}}}:{month}"], args=[limit, _USAGE_TTL]))
        return None if count < 0 else count

    async def used(self, customer_id: str, month: str) -> int:
        async with translate_errors():
            value = await self._redis.get(f"usage:{{{customer_id}}}:{month}")
        return int(value or 0)
