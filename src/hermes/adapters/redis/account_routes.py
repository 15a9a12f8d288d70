from __future__ import annotations

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.routing import AccountRoutes

_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if not owner then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return owner
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def route_key(phone_number_id: str) -> str:
    """WhatsApp's route key as DESIGN section 5 spells it (no hash tag: one key shares no slot)."""
    return f"wa_phone_id:{phone_number_id}"


class RedisAccountRoutes(AccountRoutes):
    """`{kind}:{account id}` (`wa_phone_id:111`) -> customer id; the route key is the Redis key."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)

    async def claim(self, route_key: str, customer_id: str) -> str:
        async with translate_errors():
            owner = await self._claim(keys=[route_key], args=[customer_id])
        return owner.decode() if isinstance(owner, bytes) else str(owner)

    async def release(self, route_key: str, customer_id: str) -> None:
        async with translate_errors():
            await self._release(keys=[route_key], args=[customer_id])

    async def owner(self, route_key: str) -> str | None:
        async with translate_errors():
            value = await self._redis.get(route_key)
        return value.decode() if isinstance(value, bytes) else value
