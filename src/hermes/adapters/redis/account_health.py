"""The health-check schedule in Redis, shared by every instance.

| key | value | TTL |
|---|---|---|
| `health:due` | sorted set: `{cust}:{platform}:{account}` scored by when its next check is due (epoch s) | none |

One sorted set for all customers: the checker asks "what is due now, in any
account", which a per-customer key could not answer without a scan.
"""

from __future__ import annotations

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.account_health import HealthSchedule
from hermes.domain.account_health import AccountRef

KEY = "health:due"
# Take what is due and push it a lease ahead in one step, so two instances never claim the same turn.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], member)
end
return due
"""


class RedisHealthSchedule(HealthSchedule):
    def __init__(self, redis: RedisClient, key: str = KEY) -> None:
        self._redis = redis
        self._key = key
        self._claim = redis.register_script(_CLAIM)

    async def add(self, account: AccountRef, at: float) -> bool:
        async with translate_errors():
            return bool(await self._redis.zadd(self._key, {account.key(): at}, nx=True))

    async def set(self, account: AccountRef, at: float) -> None:
        async with translate_errors():
            await self._redis.zadd(self._key, {account.key(): at})

    async def remove(self, account: AccountRef) -> None:
        async with translate_errors():
            await self._redis.zrem(self._key, account.key())

    async def claim(self, now: float, limit: int, lease: float) -> list[AccountRef]:
        async with translate_errors():
            raw = await self._claim(keys=[self._key], args=[repr(now), limit, repr(now + lease)])
        claimed = []
        for member in raw:
            ref = AccountRef.from_key(member.decode() if isinstance(member, bytes) else member)
            if ref is not None:
                claimed.append(ref)
        return claimed

    async def size(self) -> int:
        async with translate_errors():
            return int(await self._redis.zcard(self._key))
