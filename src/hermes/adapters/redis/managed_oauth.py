"""Managed OAuth in Redis: pending connect links, account health records and the refresh locks.

| key | value | TTL |
|---|---|---|
| `connect:state:{sha256(state)}` | pending connect link (JSON) | until the link expires |
| `account:status:{cust}` | hash: `{platform}:{account}` -> status record (JSON) | none |
| `lock:refresh:{cust}:{platform}:{account}` | the holder's random token | the refresh deadline |
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec

from hermes.adapters.platform_codec import dec_hook, enc_hook
from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.adapters.redis.credential_store import RedisCredentialStore
from hermes.application.ports.managed_oauth import AccountOverview, AccountStatuses, ConnectRequests, RefreshLocks
from hermes.domain.errors import Unavailable
from hermes.domain.managed_oauth import AccountStatus, ConnectRequest
from hermes.domain.platform import Platform

_encode = msgspec.json.Encoder(enc_hook=enc_hook).encode
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_POLL_SECONDS = 0.05


def _decode(raw: Any, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(raw, type=kind, dec_hook=dec_hook)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # a record from another version: treat it as gone


class RedisConnectRequests(ConnectRequests):
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def put(self, digest: str, request: ConnectRequest) -> None:
        ttl = max(1, int((request.expires_at - datetime.now(UTC)).total_seconds()) + 1)
        async with translate_errors():
            await self._redis.set(f"connect:state:{digest}", _encode(request), ex=ttl)

    async def take(self, digest: str) -> ConnectRequest | None:
        async with translate_errors():
            raw = await self._redis.getdel(f"connect:state:{digest}")
        return None if raw is None else _decode(raw, ConnectRequest)


def _status_key(customer_id: str) -> str:
    return f"account:status:{{{customer_id}}}"


class RedisAccountStatuses(AccountStatuses):
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def put(self, customer_id: str, status: AccountStatus) -> None:
        async with translate_errors():
            await self._redis.hset(
                _status_key(customer_id), f"{status.platform.value}:{status.account}", _encode(status)
            )

    async def get(self, customer_id: str, platform: Platform, account: str) -> AccountStatus | None:
        async with translate_errors():
            raw = await self._redis.hget(_status_key(customer_id), f"{platform.value}:{account}")
        return None if raw is None else _decode(raw, AccountStatus)

    async def all(self, customer_id: str) -> list[AccountStatus]:
        async with translate_errors():
            raw = await self._redis.hgetall(_status_key(customer_id))
        return _statuses(raw.values())

    async def remove(self, customer_id: str, platform: Platform, account: str) -> None:
        async with translate_errors():
            await self._redis.hdel(_status_key(customer_id), f"{platform.value}:{account}")


class RedisAccountOverview(AccountOverview):
    """A customer's accounts and their health records in one round trip: one script reads the
    credential keys and the status hash, which share the customer's hash tag."""

    def __init__(self, redis: RedisClient) -> None:
        self._store = RedisCredentialStore(redis)

    async def read(self, customer_id: str) -> tuple[list[tuple[Platform, str]], list[AccountStatus]]:
        held, records = await self._store.accounts_and_hash(customer_id, _status_key(customer_id))
        return held, _statuses(records)


def _statuses(records: Iterable[Any]) -> list[AccountStatus]:
    """Status records, sorted; one left by another version reads as absent."""
    found = [_decode(value, AccountStatus) for value in records]
    return sorted((s for s in found if s is not None), key=lambda s: (s.platform.value, s.account))


class RedisRefreshLocks(RefreshLocks):
    """SET NX PX with a random token; released only by its holder, lapsing by itself if the holder dies."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._release = redis.register_script(_RELEASE)

    @asynccontextmanager
    async def hold(self, key: str, ttl: float, wait: float) -> AsyncIterator[None]:
        name = f"lock:refresh:{{{key}}}"
        token = secrets.token_hex(16)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + wait
        while True:
            async with translate_errors():
                if await self._redis.set(name, token, nx=True, px=int(ttl * 1000)):
                    break
            if loop.time() >= give_up:
                raise Unavailable("another renewal of this account's access is still running; try again shortly")
            await asyncio.sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            async with translate_errors():
                await self._release(keys=[name], args=[token])
