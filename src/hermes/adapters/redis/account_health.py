"""Schedules of accounts in Redis, shared by every instance, and the progress of jobs run once per deployment.

| key | value | TTL |
|---|---|---|
| `health:due` | sorted set: `{cust}:{platform}:{account}` scored by when its next check is due (epoch s) | none |
| `oauth:renewal:due` | sorted set: accounts with a renewable managed-OAuth token, scored by when to renew it | none |
| `{JOB}:done` | when the job finished (for a backfill: every stored account had a turn by then) | none |
| `{JOB}:lease` | the token of the instance running the job | renewed at each step |
| `{JOB}:position` | where the job's walk stopped | none (removed when done) |

The jobs (`{JOB}`): `{health:backfill:v1}` gives every stored account a turn in `health:due`,
`{oauth:renewal:backfill:v1}` puts every stored managed-OAuth account in `oauth:renewal:due`, and
`{routes:unbraced:v1}` moves WhatsApp routes to the seed's spelling, and `{conversations:relisted:v1}`
rewrites conversation lists kept in their first form. A job's keys share one hash tag, so
each step is one script on a cluster too. Deleting a job's `done` key makes the next instance to start
run it again (a lost schedule).

One sorted set per schedule for all customers: an instance asks "what is due now, in any
account", which a per-customer key could not answer without a scan.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.account_health import AccountSchedule, BackfillProgress
from hermes.domain.account_health import AccountRef

KEY = "health:due"
RENEWALS = "oauth:renewal:due"
# Take what is due and push it a lease ahead in one step, so two instances never claim the same turn.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], member)
end
return due
"""


class RedisAccountSchedule(AccountSchedule):
    """One sorted set: the health checks (`KEY`) or the token renewals (`RENEWALS`)."""

    def __init__(self, redis: RedisClient, key: str = KEY) -> None:
        self._redis = redis
        self._key = key
        self._claim = redis.register_script(_CLAIM)

    async def add(self, due: Mapping[AccountRef, float]) -> int:
        if not due:
            return 0
        async with translate_errors():
            return int(await self._redis.zadd(self._key, {a.key(): at for a, at in due.items()}, nx=True) or 0)

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


BACKFILL = "{health:backfill:v1}"
RENEWALS_BACKFILL = "{oauth:renewal:backfill:v1}"
ROUTES_UNBRACED = "{routes:unbraced:v1}"
CONVERSATIONS_RELISTED = "{conversations:relisted:v1}"
_TAKE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', KEYS[2]) ~= ARGV[1] then return false end
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return redis.call('GET', KEYS[3]) or ''
"""
_ADVANCE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
_FINISH = """
redis.call('SET', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""


class RedisBackfillProgress(BackfillProgress):
    """SET NX PX lease with a random token per holder; the position moves only under the lease."""

    def __init__(self, redis: RedisClient, key: str = BACKFILL) -> None:
        self._redis = redis
        self._done, self._lease, self._position = f"{key}:done", f"{key}:lease", f"{key}:position"
        self._take = redis.register_script(_TAKE)
        self._advance = redis.register_script(_ADVANCE)
        self._finish = redis.register_script(_FINISH)

    async def done(self) -> bool:
        async with translate_errors():
            return bool(await self._redis.exists(self._done))

    async def take(self, holder: str, lease: float) -> str | None:
        keys = [self._done, self._lease, self._position]
        async with translate_errors():
            position = await self._take(keys=keys, args=[holder, _ms(lease)])
        if position is None:
            return None
        return position.decode() if isinstance(position, bytes) else str(position)

    async def advance(self, holder: str, position: str, lease: float) -> bool:
        async with translate_errors():
            return bool(await self._advance(keys=[self._lease, self._position], args=[holder, position, _ms(lease)]))

    async def finish(self, holder: str) -> None:
        finished = datetime.now(UTC).isoformat(timespec="seconds")
        async with translate_errors():
            await self._finish(keys=[self._done, self._lease, self._position], args=[holder, finished])


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
