from __future__ import annotations

import logging

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
log = logging.getLogger("hermes.routes")

# Earlier versions stored WhatsApp routes as `wa_phone_id:{111}`; DESIGN section 5 spells them `wa_phone_id:111`.
_BRACED = "wa_phone_id:{*}"

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

    async def unbrace(self) -> int:
        """Move routes stored under the braced spelling to `wa_phone_id:111`; idempotent, safe to run on every
        start and concurrently. A key already holding another owner wins (it is what the seed's system wrote)
        and the braced one is left for an operator; returns how many routes moved."""
        moved = 0
        async with translate_errors():
            async for raw in self._redis.scan_iter(match=_BRACED, count=500):
                braced = raw.decode() if isinstance(raw, bytes) else str(raw)
                if not (braced.startswith("wa_phone_id:{") and braced.endswith("}")):
                    continue
                owner = await self._redis.get(braced)
                if owner is None:
                    continue
                owner_id = owner.decode() if isinstance(owner, bytes) else str(owner)
                plain = "wa_phone_id:" + braced[len("wa_phone_id:{") : -1]
                now = await self._claim(keys=[plain], args=[owner_id])
                now_id = now.decode() if isinstance(now, bytes) else str(now)
                if now_id != owner_id:
                    log.warning("route %s held by another customer; %s left in place", plain, braced)
                    continue
                await self._release(keys=[braced], args=[owner_id])
                moved += 1
        if moved:
            log.info("moved %d WhatsApp route(s) to the unbraced spelling", moved)
        return moved
