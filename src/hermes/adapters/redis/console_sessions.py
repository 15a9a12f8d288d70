"""Console sessions in Redis, shared by every instance: `console:session:{digest}`, expiring when idle."""

from __future__ import annotations

from datetime import datetime

import msgspec

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.console import ConsoleSessionStore
from hermes.domain.console import ConsoleSession


class _Stored(msgspec.Struct, array_like=True):
    customer_id: str
    key_digest: str
    created_at: datetime


def session_key(digest: str) -> str:
    return f"console:session:{digest}"


class RedisConsoleSessionStore(ConsoleSessionStore):
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def open(self, digest: str, session: ConsoleSession, idle_ttl: int) -> None:
        value = msgspec.json.encode(_Stored(session.customer_id, session.key_digest, session.created_at))
        async with translate_errors():
            await self._redis.set(session_key(digest), value, ex=idle_ttl)

    async def touch(self, digest: str, idle_ttl: int) -> ConsoleSession | None:
        # GETEX reads and restarts the idle time in one round trip.
        async with translate_errors():
            raw = await self._redis.getex(session_key(digest), ex=idle_ttl)
        if raw is None:
            return None
        try:
            stored = msgspec.json.decode(raw, type=_Stored)
        except msgspec.DecodeError:
            return None
        return ConsoleSession(stored.customer_id, stored.key_digest, stored.created_at)

    async def close(self, digest: str) -> None:
        async with translate_errors():
            await self._redis.delete(session_key(digest))
