from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.inbound import UnroutedNumbers
from hermes.domain.platform import Platform

COUNTS = "inbound:{unrouted}:counts"
LAST_SEEN = "inbound:{unrouted}:last"


class RedisUnroutedNumbers(UnroutedNumbers):
    """`inbound:{unrouted}:counts` (hash, `platform:number` -> items) and `...:last` (-> last seen, epoch s)."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def record(self, platform: Platform, business_id: str, items: int, now: datetime) -> None:
        field = f"{platform.value}:{business_id}"
        async with translate_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(COUNTS, field, items)
            pipe.hset(LAST_SEEN, field, str(now.timestamp()))
            await pipe.execute()

    async def counts(self) -> list[tuple[Platform, str, int, datetime]]:
        async with translate_errors():
            counts: Any = await self._redis.hgetall(COUNTS)
            seen: Any = await self._redis.hgetall(LAST_SEEN)
        found = []
        for raw_field, raw_count in sorted(counts.items()):
            platform, _, business_id = raw_field.decode().partition(":")
            at = float(seen.get(raw_field, b"0"))
            found.append((Platform(platform), business_id, int(raw_count), datetime.fromtimestamp(at, UTC)))
        return found
