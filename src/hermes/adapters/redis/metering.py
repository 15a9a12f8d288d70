from __future__ import annotations

import time

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.metering import RateLimiter, UsageMeter

_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
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
    """Fixed one-minute windows counted atomically in Redis, so every instance shares them."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._hit = redis.register_script(_HIT)

    async def hit(self, customer_id: str, limit: int) -> float | None:
        now = time.time()
        window = int(now // 60)
        async with translate_errors():
            count = int(await self._hit(keys=[f"ratelimit:{{{customer_id}}}:{window}"], args=[120]))
        if count > limit:
            return max(1.0, (window + 1) * 60 - now)
        return None


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
