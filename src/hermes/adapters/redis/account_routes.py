"""Inbound routes in Redis.

| key | value |
|---|---|
| `{kind}:{account id}` (`wa_phone_id:111`, `ig_user_id:1784...`, `tg_bot_id:123456789`) | the owner |

The value is the bare customer id (`cust_0123456789abcdef`) when the route belongs to the customer's
default account: exactly what the seed's system writes, so its routes read as before. A route of
another account is `{customer id}/{account name}` (`cust_0123456789abcdef/work`): neither a customer id
nor an account name (`[a-z0-9_-]{1,32}`) ever holds a `/`, so the two forms cannot be confused.
"""

from __future__ import annotations

import logging

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.routing import AccountRoutes, RouteOwner
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT

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


_SEPARATOR = "/"


def encode_owner(owner: RouteOwner) -> str:
    if owner.account == DEFAULT_ACCOUNT:
        return owner.customer_id
    return f"{owner.customer_id}{_SEPARATOR}{owner.account}"


def decode_owner(raw: bytes | str) -> RouteOwner:
    value = raw.decode() if isinstance(raw, bytes) else str(raw)
    customer_id, _, account = value.partition(_SEPARATOR)
    return RouteOwner(customer_id, account or DEFAULT_ACCOUNT)


def route_key(phone_number_id: str) -> str:
    """WhatsApp's route key as DESIGN section 5 spells it (no hash tag: one key shares no slot)."""
    return f"wa_phone_id:{phone_number_id}"


class RedisAccountRoutes(AccountRoutes):
    """`{kind}:{account id}` (`wa_phone_id:111`) -> owner (module docstring); the route key is the Redis key."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)

    async def claim(self, route_key: str, owner: RouteOwner) -> RouteOwner:
        async with translate_errors():
            holder = await self._claim(keys=[route_key], args=[encode_owner(owner)])
        return decode_owner(holder)

    async def release(self, route_key: str, owner: RouteOwner) -> None:
        async with translate_errors():
            await self._release(keys=[route_key], args=[encode_owner(owner)])

    async def owner(self, route_key: str) -> RouteOwner | None:
        async with translate_errors():
            value = await self._redis.get(route_key)
        return None if value is None else decode_owner(value)

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
