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
    """`addrlimit:{bucket:address}:{window length}:{window number}`: one counter per address and window.

    A counter lives two windows. The hash tag is the bucket and address, so addresses
    spread over a Redis Cluster's slots while one address's counter is the same key
    for every instance.
    """

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._hit = redis.register_script(_HIT)

    async def hit(self, bucket: str, address: str, limit: int, window: int = 60) -> float | None:
        now = time.time()
        number = int(now // window)
        key = f"addrlimit:{{{bucket}:{address}}}:{window}:{number}"
        async with translate_errors():
            count = int(await self._hit(keys=[key], args=[2 * window]))
        if count > limit:
            return max(1.0, (number + 1) * window - now)
        return None
