from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.credentials import CredentialStore
from hermes.domain.platform import Platform

_REPLACE_IF_UNCHANGED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


def creds_key(customer_id: str, platform: Platform) -> str:
    # The hash tag keeps all of a customer's credentials in one cluster slot, so MGET works.
    return f"creds:{{{customer_id}}}:{platform.value}"


class RedisCredentialStore(CredentialStore):
    """`creds:{cust}:{platform}` -> AES-GCM envelope, no TTL."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._replace = redis.register_script(_REPLACE_IF_UNCHANGED)

    async def put(self, customer_id: str, platform: Platform, envelope: bytes) -> None:
        async with translate_errors():
            await self._redis.set(creds_key(customer_id, platform), envelope)

    async def get(self, customer_id: str, platform: Platform) -> bytes | None:
        async with translate_errors():
            value = await self._redis.get(creds_key(customer_id, platform))
        return value.encode() if isinstance(value, str) else value

    async def delete(self, customer_id: str, platform: Platform) -> bool:
        async with translate_errors():
            return bool(await self._redis.delete(creds_key(customer_id, platform)))

    async def present(self, customer_id: str, platforms: Sequence[Platform]) -> list[bool]:
        async with translate_errors():
            values = await self._redis.mget([creds_key(customer_id, p) for p in platforms])
        return [v is not None for v in values]

    async def replace_if_unchanged(self, customer_id: str, platform: Platform, old: bytes, new: bytes) -> bool:
        async with translate_errors():
            return bool(await self._replace(keys=[creds_key(customer_id, platform)], args=[old, new]))

    async def scan(self) -> AsyncIterator[tuple[str, Platform, bytes]]:
        async with translate_errors():
            async for raw_key in self._redis.scan_iter(match="creds:*", count=500):
                key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
                tagged, _, platform = key[len("creds:") :].rpartition(":")
                customer_id = tagged.strip("{}")
                try:
                    parsed = Platform(platform)
                except ValueError:
                    continue
                envelope = await self._redis.get(key)
                if envelope is not None:
                    yield customer_id, parsed, envelope.encode() if isinstance(envelope, str) else envelope
