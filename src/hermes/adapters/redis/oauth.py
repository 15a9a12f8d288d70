"""OAuth clients, authorization requests and codes, grants and tokens in Redis.

| key | value | TTL |
|---|---|---|
| `oauth:client:{client_id}` | registered client (JSON) | 1 day unused, 90 days from last use |
| `oauth:consent:{sha256(request id)}` | request on the consent page | 10 min |
| `oauth:code:{sha256(code)}` | hash: `record`, `redeemed` | code lifetime + 10 min |
| `oauth:grant:{cust}:{grant id}` | grant (JSON) | refresh token lifetime, from last use |
| `oauth:grants:{cust}` | set of the customer's grant ids | as long as its newest grant |
| `oauth:epoch:{cust}` | revocation epoch | none |
| `oauth:access:{sha256(token)}` | access token (JSON, with the customer) | 1 hour |
| `oauth:refresh:{sha256(token)}` | hash: `record`, `used` | refresh token lifetime |

A customer's grant keys, grant set and epoch share its `{hash tag}`, so reading a
grant with the epoch is one MGET, also on Redis Cluster.
"""

from __future__ import annotations

from typing import Any

import msgspec

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.oauth import AuthorizationStore, GrantStore, OAuthClientStore
from hermes.domain.oauth import Grant, IssuedCode, IssuedToken, OAuthClient, PendingAuthorization, TokenKind

_encode = msgspec.json.Encoder().encode

# Mark a hash's flag field once: {1, record} the first time, {0, record} after, nil when the key is gone.
_MARK_ONCE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local first = redis.call('HSETNX', KEYS[1], ARGV[1], '1')
return {first, redis.call('HGET', KEYS[1], 'record')}
"""


def _decode(raw: Any, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(raw, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # a record from another version: treat it as gone


def client_key(client_id: str) -> str:
    return f"oauth:client:{{{client_id}}}"


def consent_key(request_digest: str) -> str:
    return f"oauth:consent:{{{request_digest}}}"


def code_key(code_digest: str) -> str:
    return f"oauth:code:{{{code_digest}}}"


def grant_key(customer_id: str, grant_id: str) -> str:
    return f"oauth:grant:{{{customer_id}}}:{grant_id}"


def grants_key(customer_id: str) -> str:
    return f"oauth:grants:{{{customer_id}}}"


def epoch_key(customer_id: str) -> str:
    return f"oauth:epoch:{{{customer_id}}}"


def token_key(kind: TokenKind, token_digest: str) -> str:
    return f"oauth:{kind.value}:{{{token_digest}}}"


class RedisOAuthClientStore(OAuthClientStore):
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def add(self, client: OAuthClient, ttl: int) -> None:
        async with translate_errors():
            await self._redis.set(client_key(client.client_id), _encode(client), ex=ttl)

    async def get(self, client_id: str) -> OAuthClient | None:
        async with translate_errors():
            raw = await self._redis.get(client_key(client_id))
        return None if raw is None else _decode(raw, OAuthClient)

    async def keep(self, client_id: str, ttl: int) -> None:
        async with translate_errors():
            await self._redis.expire(client_key(client_id), ttl, gt=True)


class RedisAuthorizationStore(AuthorizationStore):
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._mark_once = redis.register_script(_MARK_ONCE)

    async def open(self, request_digest: str, pending: PendingAuthorization, ttl: int) -> None:
        async with translate_errors():
            await self._redis.set(consent_key(request_digest), _encode(pending), ex=ttl)

    async def pending(self, request_digest: str) -> PendingAuthorization | None:
        async with translate_errors():
            raw = await self._redis.get(consent_key(request_digest))
        return None if raw is None else _decode(raw, PendingAuthorization)

    async def update(self, request_digest: str, pending: PendingAuthorization) -> bool:
        async with translate_errors():
            done = await self._redis.set(consent_key(request_digest), _encode(pending), xx=True, keepttl=True)
        return bool(done)

    async def close(self, request_digest: str) -> PendingAuthorization | None:
        async with translate_errors():
            raw = await self._redis.getdel(consent_key(request_digest))
        return None if raw is None else _decode(raw, PendingAuthorization)

    async def issue_code(self, code_digest: str, code: IssuedCode, ttl: int) -> None:
        key = code_key(code_digest)
        async with translate_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "record", _encode(code))
            pipe.expire(key, ttl)
            await pipe.execute()

    async def code(self, code_digest: str) -> IssuedCode | None:
        async with translate_errors():
            raw = await self._redis.hget(code_key(code_digest), "record")  # type: ignore[misc]
        return None if raw is None else _decode(raw, IssuedCode)

    async def redeem_code(self, code_digest: str) -> tuple[IssuedCode, bool] | None:
        async with translate_errors():
            found = await self._mark_once(keys=[code_key(code_digest)], args=["redeemed"])
        if not found or found[1] is None:
            return None
        code = _decode(found[1], IssuedCode)
        return None if code is None else (code, int(found[0]) == 1)


class RedisGrantStore(GrantStore):
    """Grants and tokens; also the SessionRevoker that deactivation and key rotation call."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._mark_once = redis.register_script(_MARK_ONCE)

    async def epoch(self, customer_id: str) -> int:
        async with translate_errors():
            return int(await self._redis.get(epoch_key(customer_id)) or 0)

    async def save_grant(self, grant: Grant, ttl: int) -> None:
        index = grants_key(grant.customer_id)
        async with translate_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.set(grant_key(grant.customer_id, grant.grant_id), _encode(grant), ex=ttl)
            pipe.sadd(index, grant.grant_id)
            pipe.expire(index, ttl, gt=True)
            pipe.expire(index, ttl, nx=True)
            await pipe.execute()

    async def grant(self, customer_id: str, grant_id: str) -> Grant | None:
        async with translate_errors():
            raw, epoch = await self._redis.mget([grant_key(customer_id, grant_id), epoch_key(customer_id)])
        if raw is None:
            return None
        grant: Grant | None = _decode(raw, Grant)
        return grant if grant is not None and grant.epoch == int(epoch or 0) else None

    async def grants(self, customer_id: str) -> list[Grant]:
        index = grants_key(customer_id)
        async with translate_errors():
            members = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in await self._redis.smembers(index))  # type: ignore[misc]
            if not members:
                return []
            *values, epoch = await self._redis.mget(
                [grant_key(customer_id, g) for g in members] + [epoch_key(customer_id)]
            )
            live: list[Grant] = []
            gone: list[str] = []
            for grant_id, raw in zip(members, values, strict=True):
                grant = None if raw is None else _decode(raw, Grant)
                if grant is not None and grant.epoch == int(epoch or 0):
                    live.append(grant)
                elif raw is None:
                    gone.append(grant_id)
            if gone:
                await self._redis.srem(index, *gone)  # type: ignore[misc]
        return live

    async def revoke_grant(self, customer_id: str, grant_id: str) -> bool:
        async with translate_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(grant_key(customer_id, grant_id))
            pipe.srem(grants_key(customer_id), grant_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def revoke_customer(self, customer_id: str) -> None:
        index = grants_key(customer_id)
        async with translate_errors():
            # The epoch alone revokes everything, also a grant written after the SMEMBERS below;
            # deleting the keys only frees the memory sooner.
            await self._redis.incr(epoch_key(customer_id))
            members = await self._redis.smembers(index)  # type: ignore[misc]
            keys = [grant_key(customer_id, m.decode() if isinstance(m, bytes) else str(m)) for m in members]
            await self._redis.delete(index, *keys)

    async def put_token(self, token_digest: str, kind: TokenKind, token: IssuedToken, ttl: int) -> None:
        key = token_key(kind, token_digest)
        async with translate_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "record", _encode(token))
            pipe.expire(key, ttl)
            await pipe.execute()

    async def token(self, token_digest: str, kind: TokenKind) -> IssuedToken | None:
        async with translate_errors():
            raw = await self._redis.hget(token_key(kind, token_digest), "record")  # type: ignore[misc]
        return None if raw is None else _decode(raw, IssuedToken)

    async def use_refresh(self, token_digest: str) -> bool:
        async with translate_errors():
            found = await self._mark_once(keys=[token_key(TokenKind.REFRESH, token_digest)], args=["used"])
        return bool(found) and int(found[0]) == 1
