from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.credentials import AccountsPage, CredentialStore
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT
from hermes.domain.platform import Platform, all_platforms

_REPLACE_IF_UNCHANGED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
# A customer's accounts in one step: whether each platform's default account holds an envelope
# (EXISTS: the envelopes stay in Redis), the set of its other accounts and, when a hash follows
# the credential keys, that hash too (the accounts' health records). KEYS: the accounts set, the
# ARGV[1] default-account keys, then the optional hash; all under the customer's hash tag.
_ACCOUNTS = """
local n = tonumber(ARGV[1])
local held = {}
for i = 1, n do held[i] = redis.call('EXISTS', KEYS[i + 1]) end
local hash = {}
if #KEYS > n + 1 then hash = redis.call('HGETALL', KEYS[n + 2]) end
return {held, redis.call('SMEMBERS', KEYS[1]), hash}
"""


def _creds_prefix(customer_id: str) -> str:
    # The hash tag keeps all of a customer's credentials in one cluster slot, so one script reads them.
    return f"creds:{{{customer_id}}}:"


def creds_key(customer_id: str, platform: Platform, account: str = DEFAULT_ACCOUNT) -> str:
    # The default account keeps the key it always had, so data stored before accounts existed stays readable.
    base = _creds_prefix(customer_id) + platform.value
    return base if account == DEFAULT_ACCOUNT else f"{base}:{account}"


def _accounts_key(customer_id: str) -> str:
    # Outside the `creds:*` pattern so that key rotation's scan never mistakes it for an envelope.
    return f"credaccounts:{{{customer_id}}}"


_PATTERN = "creds:*"


def _parse(raw_key: object) -> tuple[str, Platform, str] | None:
    """(customer, platform, account) named by a `creds:` key; None for a key of no declared platform."""
    key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
    tagged, _, rest = key[len("creds:") :].rpartition("}:")
    platform, _, account = rest.partition(":")
    try:
        return tagged.lstrip("{"), Platform(platform), account or DEFAULT_ACCOUNT
    except ValueError:
        return None


def _bytes(value: object) -> bytes | None:
    if value is None:
        return None
    return value.encode() if isinstance(value, str) else value  # type: ignore[return-value]


class RedisCredentialStore(CredentialStore):
    """`creds:{cust}:{platform}[:{account}]` -> AES-GCM envelope, no TTL.

    `credaccounts:{cust}` is a set of `{platform}:{account}` for the accounts other than
    the default one, so listing a customer's accounts needs no keyspace scan.
    """

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._replace = redis.register_script(_REPLACE_IF_UNCHANGED)
        self._accounts = redis.register_script(_ACCOUNTS)

    async def put(self, customer_id: str, platform: Platform, envelope: bytes, account: str = DEFAULT_ACCOUNT) -> None:
        async with translate_errors():
            if account != DEFAULT_ACCOUNT:
                await self._redis.sadd(_accounts_key(customer_id), f"{platform.value}:{account}")
            await self._redis.set(creds_key(customer_id, platform, account), envelope)

    async def get(self, customer_id: str, platform: Platform, account: str = DEFAULT_ACCOUNT) -> bytes | None:
        async with translate_errors():
            value = await self._redis.get(creds_key(customer_id, platform, account))
        return _bytes(value)

    async def delete(self, customer_id: str, platform: Platform, account: str = DEFAULT_ACCOUNT) -> bool:
        async with translate_errors():
            removed = bool(await self._redis.delete(creds_key(customer_id, platform, account)))
            if account != DEFAULT_ACCOUNT:
                await self._redis.srem(_accounts_key(customer_id), f"{platform.value}:{account}")
        return removed

    async def accounts(self, customer_id: str) -> list[tuple[Platform, str]]:
        held, _ = await self.accounts_and_hash(customer_id, None)
        return held

    async def accounts_and_hash(
        self, customer_id: str, hash_key: str | None
    ) -> tuple[list[tuple[Platform, str]], list[bytes]]:
        """`accounts`, and the values of the hash at `hash_key` (under the customer's hash tag) read with them."""
        platforms = all_platforms()
        prefix = _creds_prefix(customer_id)
        keys = [_accounts_key(customer_id), *[prefix + p for p in platforms]]  # creds_key of each default account
        if hash_key is not None:
            keys.append(hash_key)
        async with translate_errors():
            try:
                # EVALSHA itself: redis-py's script object costs more per call than the command.
                reply = await self._redis.execute_command(
                    "EVALSHA", self._accounts.sha, len(keys), *keys, len(platforms)
                )
            except NoScriptError:  # a restarted or another server: load it, once
                reply = await self._accounts(keys=keys, args=[len(platforms)])
        defaults, others, flat = reply
        found = [(p, DEFAULT_ACCOUNT) for p, here in zip(platforms, defaults, strict=True) if here]
        for raw in others:
            member = raw.decode() if isinstance(raw, bytes) else raw
            platform, _, account = member.partition(":")
            try:
                found.append((Platform(platform), account))
            except ValueError:
                continue
        return sorted(set(found), key=lambda a: (a[0].value, a[1])), flat[1::2]

    async def present(self, customer_id: str, platforms: Sequence[Platform]) -> list[bool]:
        held = {p for p, _ in await self.accounts(customer_id)}
        return [p in held for p in platforms]

    async def replace_if_unchanged(
        self, customer_id: str, platform: Platform, old: bytes, new: bytes, account: str = DEFAULT_ACCOUNT
    ) -> bool:
        async with translate_errors():
            return bool(await self._replace(keys=[creds_key(customer_id, platform, account)], args=[old, new]))

    async def scan(self) -> AsyncIterator[tuple[str, Platform, str, bytes]]:
        async with translate_errors():
            async for raw_key in self._redis.scan_iter(match=_PATTERN, count=500):
                parsed = _parse(raw_key)
                if parsed is None:
                    continue
                envelope = _bytes(await self._redis.get(raw_key))
                if envelope is not None:
                    yield *parsed, envelope

    async def page(self, position: str, size: int) -> AccountsPage:
        """One SCAN step over the `creds:` keys: `size` is its COUNT, the work Redis does for it.

        The position is SCAN's cursor; on a cluster, the primary being walked and its
        cursor (primaries in name order). A primary gone since (a failover) starts the
        walk again from the first one: listing an account twice is harmless, missing one is not.
        """
        size = max(1, size)
        keys: Sequence[object]
        async with translate_errors():
            if isinstance(self._redis, RedisCluster):
                keys, following = await self._cluster_step(self._redis, position, size)
            else:
                cursor, keys = await self._redis.scan(cursor=_cursor(position), match=_PATTERN, count=size)
                following = str(cursor) if int(cursor) else None
        accounts = [parsed for key in keys if (parsed := _parse(key)) is not None]
        return AccountsPage(accounts, following)

    async def _cluster_step(self, redis: RedisCluster, position: str, size: int) -> tuple[list[Any], str | None]:
        primaries = sorted(node.name for node in redis.get_primaries())
        name, _, cursor = position.rpartition(" ")
        if name not in primaries:
            name, cursor = primaries[0], "0"
        # On a cluster, SCAN answers with a cursor per node it asked.
        cursors, keys = cast(
            tuple[dict[str, int], list[Any]],
            await redis.scan(
                cursor=_cursor(cursor), match=_PATTERN, count=size, target_nodes=redis.get_node(node_name=name)
            ),
        )
        following = int(cursors[name])
        if following:
            return list(keys), f"{name} {following}"
        after = primaries.index(name) + 1
        return list(keys), f"{primaries[after]} 0" if after < len(primaries) else None


def _cursor(position: str) -> int:
    return int(position) if position.isdigit() else 0
