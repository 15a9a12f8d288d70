"""The send guards' state in Redis, shared by every instance; every key carries the customer's hash tag.

- `policy:{cust}`: the send policy (JSON, not a secret)
- `idem:{cust}:{sha256(key)}`: an idempotency key's record, 24 h from the first claim
- `sendcount:{cust}:{recipient}:{hour}`: sends to one recipient in one hour (a counter, two hours' TTL)
- `sentto:{cust}`: recipients (digests) written to before, for "approval for new recipients"
- `approval:{cust}:{id}` (hash: state, body) and `approvals:{cust}` (ids still pending, by time)
- `approvals:customers`: customers that may have sends waiting, for the expiry sweep
"""

from __future__ import annotations

import time
from typing import cast

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.adapters.send_records import (
    decode_pending,
    decode_policy,
    decode_record,
    encode_pending,
    encode_policy,
    encode_record,
)
from hermes.application.ports.sends import IdempotencyKeys, PendingSends, PolicyStore, RecipientLedger
from hermes.domain.sends import IdempotencyRecord, PendingSend, PendingState, SendPolicy


class RedisPolicyStore(PolicyStore):
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def get(self, customer_id: str) -> SendPolicy | None:
        async with translate_errors():
            raw = await self._redis.get(f"policy:{{{customer_id}}}")
        return None if raw is None else decode_policy(raw)

    async def put(self, customer_id: str, policy: SendPolicy) -> None:
        async with translate_errors():
            await self._redis.set(f"policy:{{{customer_id}}}", encode_policy(policy))


class RedisIdempotencyKeys(IdempotencyKeys):
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    @staticmethod
    def _key(customer_id: str, key_digest: str) -> str:
        return f"idem:{{{customer_id}}}:{key_digest}"

    async def claim(
        self, customer_id: str, key_digest: str, record: IdempotencyRecord, ttl: int
    ) -> IdempotencyRecord | None:
        key = self._key(customer_id, key_digest)
        async with translate_errors():
            # SET NX GET: either this call's record is stored, or the one already there comes back; one step.
            earlier = await self._redis.set(key, encode_record(record), nx=True, ex=ttl, get=True)
        return None if earlier is None else decode_record(cast(bytes, earlier))

    async def get(self, customer_id: str, key_digest: str) -> IdempotencyRecord | None:
        async with translate_errors():
            raw = await self._redis.get(self._key(customer_id, key_digest))
        return None if raw is None else decode_record(raw)

    async def settle(self, customer_id: str, key_digest: str, record: IdempotencyRecord) -> None:
        async with translate_errors():
            await self._redis.set(self._key(customer_id, key_digest), encode_record(record), xx=True, keepttl=True)

    async def release(self, customer_id: str, key_digest: str) -> None:
        async with translate_errors():
            await self._redis.delete(self._key(customer_id, key_digest))


# A send over the cap is not counted: the count and its expiry change in one step.
_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]) return 0 end
return 1
"""


class RedisRecipientLedger(RecipientLedger):
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._count = redis.register_script(_COUNT)

    async def count(self, customer_id: str, recipient_digest: str, limit: int, window: int = 3600) -> float | None:
        now = time.time()
        number = int(now // window)
        key = f"sendcount:{{{customer_id}}}:{recipient_digest}:{number}"
        async with translate_errors():
            counted = int(await self._count(keys=[key], args=[limit, 2 * window]))
        return None if counted else max(1.0, (number + 1) * window - now)

    async def known(self, customer_id: str, recipient_digest: str) -> bool:
        async with translate_errors():
            return bool(await self._redis.sismember(f"sentto:{{{customer_id}}}", recipient_digest))

    async def remember(self, customer_id: str, recipient_digest: str) -> None:
        async with translate_errors():
            await self._redis.sadd(f"sentto:{{{customer_id}}}", recipient_digest)


_ADD = """
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'pending', 'body', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""
# pending -> sending is the single flight: of two instances approving at once, one moves it.
_MOVE = """
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
if ARGV[1] == 'pending' then redis.call('ZREM', KEYS[2], ARGV[3]) end
return 1
"""


# One key outside any customer's slot: the sweep reads it; a customer's own keys stay together.
_WAITING_CUSTOMERS = "approvals:customers"


class RedisPendingSends(PendingSends):
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._add = redis.register_script(_ADD)
        self._move = redis.register_script(_MOVE)

    @staticmethod
    def _keys(customer_id: str, approval_id: str) -> list[str]:
        return [f"approval:{{{customer_id}}}:{approval_id}", f"approvals:{{{customer_id}}}"]

    async def add(self, pending: PendingSend, ttl: int, max_pending: int) -> bool:
        keys = self._keys(pending.customer_id, pending.id)
        args: list[bytes | str | int | float] = [
            encode_pending(pending),
            ttl,
            pending.requested_at.timestamp(),
            max_pending,
            pending.id,
        ]
        async with translate_errors():
            added = bool(await self._add(keys=keys, args=args))
            if added:
                await self._redis.sadd(_WAITING_CUSTOMERS, pending.customer_id)
        return added

    async def get(self, customer_id: str, approval_id: str) -> PendingSend | None:
        async with translate_errors():
            fields = cast(dict[bytes, bytes], await self._redis.hgetall(self._keys(customer_id, approval_id)[0]))
        return self._decoded(customer_id, approval_id, fields)

    @staticmethod
    def _decoded(customer_id: str, approval_id: str, fields: dict[bytes, bytes]) -> PendingSend | None:
        if not fields or b"state" not in fields or b"body" not in fields:
            return None
        return decode_pending(customer_id, approval_id, fields[b"state"].decode(), fields[b"body"])

    async def waiting(self, customer_id: str, limit: int = 100) -> list[PendingSend]:
        index = f"approvals:{{{customer_id}}}"
        async with translate_errors():
            ids = [cast(bytes, i).decode() for i in await self._redis.zrange(index, 0, limit - 1)]
            found = [cast(dict[bytes, bytes], await self._redis.hgetall(self._keys(customer_id, i)[0])) for i in ids]
        held = [self._decoded(customer_id, i, f) for i, f in zip(ids, found, strict=True)]
        gone = [i for i, p in zip(ids, held, strict=True) if p is None]
        if gone:
            async with translate_errors():
                await self._redis.zrem(index, *gone)
        return [p for p in held if p is not None and p.state is PendingState.PENDING]

    async def move(self, customer_id: str, approval_id: str, old: PendingState, new: PendingState) -> bool:
        keys = self._keys(customer_id, approval_id)
        async with translate_errors():
            return bool(await self._move(keys=keys, args=[old.value, new.value, approval_id]))

    async def customers(self) -> list[str]:
        async with translate_errors():
            members = await self._redis.smembers(_WAITING_CUSTOMERS)
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def forget(self, customer_id: str) -> None:
        async with translate_errors():
            await self._redis.srem(_WAITING_CUSTOMERS, customer_id)
