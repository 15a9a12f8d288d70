from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hermes.adapters.inbox_records import decode_delivery, encode_delivery
from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.callbacks import KEPT_DELIVERIES, CallbackStore
from hermes.domain.callbacks import Callback, Delivery

CALLBACKS = "callbacks"

_ADVANCE = """
if redis.call('HGET', KEYS[1], 'registration') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'cursor', ARGV[2], 'failures', ARGV[3], 'next', ARGV[4])
return 1
"""
_SWAP_ENVELOPE = """
if redis.call('HGET', KEYS[1], 'secret') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'secret', ARGV[2])
return 1
"""
_UNLEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def callback_key(customer_id: str) -> str:
    return f"callback:{{{customer_id}}}"


def _time(value: bytes | None) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if value else None


class RedisCallbackStore(CallbackStore):
    """`callback:{cust}` (hash: url, sealed secret, registration, cursor, failures, next attempt),
    `callback:{cust}:deliveries` (list, newest first, 50 kept), `callback:{cust}:lease`, and the
    set `callbacks` of customers that have one (the sweep's work list)."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._advance = redis.register_script(_ADVANCE)
        self._unlease = redis.register_script(_UNLEASE)
        self._replace_secret = redis.register_script(_SWAP_ENVELOPE)

    async def put(self, callback: Callback) -> None:
        key = callback_key(callback.customer_id)
        async with translate_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.hset(
                    key,
                    mapping={
                        "url": callback.url,
                        "secret": callback.secret_envelope,
                        "registration": callback.registration,
                        "created": str(callback.created_at.timestamp()),
                        "cursor": callback.cursor or "",
                        "failures": callback.failures,
                        "next": str(callback.next_attempt_at.timestamp()) if callback.next_attempt_at else "",
                    },
                )
                await pipe.execute()
            await self._redis.sadd(CALLBACKS, callback.customer_id)

    async def get(self, customer_id: str) -> Callback | None:
        async with translate_errors():
            h: Any = await self._redis.hgetall(callback_key(customer_id))
        if not h or b"url" not in h:
            return None
        created = _time(h.get(b"created"))
        return Callback(
            customer_id=customer_id,
            url=h[b"url"].decode(),
            secret_envelope=h[b"secret"],
            registration=h[b"registration"].decode(),
            created_at=created or datetime.fromtimestamp(0, UTC),
            cursor=h.get(b"cursor", b"").decode() or None,
            failures=int(h.get(b"failures", b"0")),
            next_attempt_at=_time(h.get(b"next")),
        )

    async def replace_secret(self, customer_id: str, old: bytes, new: bytes) -> bool:
        async with translate_errors():
            return bool(await self._replace_secret(keys=[callback_key(customer_id)], args=[old, new]))

    async def delete(self, customer_id: str) -> bool:
        key = callback_key(customer_id)
        async with translate_errors():
            removed = await self._redis.delete(key, f"{key}:deliveries")
            await self._redis.srem(CALLBACKS, customer_id)
        return bool(removed)

    async def advance(
        self,
        customer_id: str,
        registration: str,
        cursor: str | None,
        failures: int,
        next_attempt_at: datetime | None,
    ) -> bool:
        args: list[str | int] = [
            registration,
            cursor or "",
            failures,
            str(next_attempt_at.timestamp()) if next_attempt_at else "",
        ]
        async with translate_errors():
            return bool(await self._advance(keys=[callback_key(customer_id)], args=args))

    async def record(self, customer_id: str, delivery: Delivery) -> None:
        key = f"{callback_key(customer_id)}:deliveries"
        async with translate_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, encode_delivery(delivery))
            pipe.ltrim(key, 0, KEPT_DELIVERIES - 1)
            await pipe.execute()

    async def deliveries(self, customer_id: str, limit: int = KEPT_DELIVERIES) -> list[Delivery]:
        async with translate_errors():
            raw: Any = await self._redis.lrange(f"{callback_key(customer_id)}:deliveries", 0, limit - 1)
        return [decode_delivery(r) for r in raw]

    async def customers(self) -> list[str]:
        async with translate_errors():
            members: Any = await self._redis.smembers(CALLBACKS)
        return sorted(m.decode() for m in members)

    async def lease(self, customer_id: str, owner: str, seconds: float) -> bool:
        async with translate_errors():
            taken = await self._redis.set(
                f"{callback_key(customer_id)}:lease", owner, nx=True, px=max(1, int(seconds * 1000))
            )
        return bool(taken)

    async def unlease(self, customer_id: str, owner: str) -> None:
        async with translate_errors():
            await self._unlease(keys=[f"{callback_key(customer_id)}:lease"], args=[owner])
