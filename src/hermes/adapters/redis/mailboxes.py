"""Polled accounts in Redis.

Keys: `mailboxes` (a set: the registry, read once per poll interval by each instance,
never a scan), and per account, under the customer's hash tag, `{mailbox}:lease` (the
holding instance, with a TTL: a crashed holder's lease simply runs out) and `{mailbox}`
(a hash: `v` UIDVALIDITY, `u` last UID, `f` failures in a row). Every script touches one
key, so this works on Redis Cluster.

| account | registry member | `{mailbox}` |
|---|---|---|
| default (as before accounts had names) | `cust_0123456789abcdef` | `mailbox:{cust_0123456789abcdef}` |
| another one (`?account=work`) | `cust_0123456789abcdef/work` | `mailbox:{cust_0123456789abcdef}/work` |

Neither a customer id nor an account name (`[a-z0-9_-]{1,32}`) holds a `/`, so the two forms
cannot be confused.
"""

from __future__ import annotations

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.mailboxes import Mailboxes, MailboxState, PolledAccount
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT

REGISTRY_KEY = "mailboxes"

# KEYS[1] lease. ARGV: holder, milliseconds. 0 when taken (or already held), else the lease's remaining ms.
_LEASE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 0
end
return math.max(redis.call('PTTL', KEYS[1]), 1)
"""
_HOLD = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def member(account: PolledAccount) -> str:
    if account.account == DEFAULT_ACCOUNT:
        return account.customer_id
    return f"{account.customer_id}/{account.account}"


def parse_member(raw: bytes | str) -> PolledAccount:
    value = raw.decode() if isinstance(raw, bytes) else str(raw)
    customer_id, _, account = value.partition("/")
    return PolledAccount(customer_id, account or DEFAULT_ACCOUNT)


def state_key(account: PolledAccount) -> str:
    suffix = "" if account.account == DEFAULT_ACCOUNT else f"/{account.account}"
    return f"mailbox:{{{account.customer_id}}}{suffix}"


def lease_key(account: PolledAccount) -> str:
    return f"{state_key(account)}:lease"


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisMailboxes(Mailboxes):
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._lease = redis.register_script(_LEASE)
        self._hold = redis.register_script(_HOLD)
        self._release = redis.register_script(_RELEASE)

    async def add(self, account: PolledAccount) -> None:
        async with translate_errors():
            await self._redis.delete(state_key(account))
            await self._redis.sadd(REGISTRY_KEY, member(account))  # type: ignore[misc]

    async def remove(self, account: PolledAccount) -> None:
        async with translate_errors():
            await self._redis.srem(REGISTRY_KEY, member(account))  # type: ignore[misc]
            await self._redis.delete(state_key(account))

    async def members(self) -> list[PolledAccount]:
        async with translate_errors():
            found = await self._redis.smembers(REGISTRY_KEY)  # type: ignore[misc]
        return sorted(parse_member(m) for m in found)

    async def lease(self, account: PolledAccount, holder: str, seconds: float) -> float:
        async with translate_errors():
            left = await self._lease(keys=[lease_key(account)], args=[holder, _ms(seconds)])
        return int(left) / 1000

    async def hold(self, account: PolledAccount, holder: str, seconds: float) -> bool:
        async with translate_errors():
            return bool(await self._hold(keys=[lease_key(account)], args=[holder, _ms(seconds)]))

    async def release(self, account: PolledAccount, holder: str) -> None:
        async with translate_errors():
            await self._release(keys=[lease_key(account)], args=[holder])

    async def state(self, account: PolledAccount) -> MailboxState:
        async with translate_errors():
            raw = await self._redis.hgetall(state_key(account))  # type: ignore[misc]
        fields = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
        return MailboxState(fields.get("v"), fields.get("u", 0), fields.get("f", 0))

    async def save(self, account: PolledAccount, state: MailboxState) -> None:
        mapping: dict[str | bytes, int] = {"u": state.last_uid, "f": state.failures}
        if state.uidvalidity is not None:
            mapping["v"] = state.uidvalidity
        async with translate_errors():
            await self._redis.hset(state_key(account), mapping=mapping)  # type: ignore[misc, arg-type]
