from __future__ import annotations

import time

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.address_limits import AddressLimiter

# The count and its expiry are set in one step: a key can never be left without a TTL.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisAddressLimiter(AddressLimiter):
    """`addrlimit:{bucket:address}:{minute}`: one counter per address and minute, gone two minutes later.

    The hash tag is the bucket and address, so addresses spread over a Redis Cluster's
    slots while one address's counter is always the same key for every instance.
    """

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._hit = redis.register_script(_HIT)

    async def hit(self, bucket: str, address: str, limit: int) -> float | None:
        now = time.time()
        window = int(now // 60)
        async with translate_errors():
            count = int(await self._hit(keys=[f"addrlimit:{{{bucket}:{address}}}:{window}"], args=[120]))
        if count > limit:
            return max(1.0, (window + 1) * 60 - now)
        return None
