"""The inbound queue on a Redis Stream with a consumer group.

Keys (one hash tag, so the scripts touch one cluster slot):
- `queue:{inbound}:events`: the stream; an entry is `p` (platform), `b` (body) and,
  for a replayed dead letter, `r` (when it was first received, ms). XADD happens
  before the webhook answers; XACK + XDEL after routing, so the stream holds only
  what is not routed yet.
- consumer group `hermes`: every instance reads with its own consumer name; an entry
  stays in the group's pending list until acknowledged, and entries whose consumer
  went quiet for `reclaim_after` seconds (crashed, or failed them) are taken over
  with XAUTOCLAIM, which counts the delivery.
- `queue:{inbound}:errors`: hash, entry id -> why its last delivery failed.
- `queue:{inbound}:dead`: the dead-letter stream (capped near 100,000 entries).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import ResponseError

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.inbound import MAX_DELIVERIES, DeadLetter, InboundQueue, QueuedEvent
from hermes.application.ports.queue_stats import QueueStats
from hermes.domain.platform import Platform

GROUP = "hermes"
_DEAD_CAP = 100_000

# KEYS: stream, dead, errors. ARGV: id, reason, deliveries, failed-at ms.
_BURY = """
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 1 then
  local f = found[1][2]
  local fields = {}
  for i = 1, #f, 2 do fields[f[i]] = f[i + 1] end
  local received = fields['r'] or string.match(ARGV[1], '^(%d+)')
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'id', ARGV[1], 'p', fields['p'], 'b', fields['b'],
    'r', received, 'n', ARGV[3], 'f', ARGV[4], 'why', ARGV[2])
end
redis.call('XACK', KEYS[1], ARGV[6], ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return #found
"""

# KEYS: stream, dead. ARGV: dead-letter id.
_REPLAY = """
local found = redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1])
if #found == 0 then return 0 end
local f = found[1][2]
local fields = {}
for i = 1, #f, 2 do fields[f[i]] = f[i + 1] end
redis.call('XADD', KEYS[1], '*', 'p', fields['p'], 'b', fields['b'], 'r', fields['r'])
redis.call('XDEL', KEYS[2], ARGV[1])
return 1
"""


def _ms(stream_id: str) -> int:
    return int(stream_id.split("-", 1)[0])


def _at(ms: int | str | bytes) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisInboundQueue(InboundQueue):
    def __init__(
        self,
        redis: RedisClient,
        *,
        name: str = "inbound",
        reclaim_after: float = 30.0,
        max_deliveries: int = MAX_DELIVERIES,
        forget_consumers_after: float = 3600.0,
    ) -> None:
        self._redis = redis
        self.stream = f"queue:{{{name}}}:events"
        self.dead = f"queue:{{{name}}}:dead"
        self.errors = f"queue:{{{name}}}:errors"
        self._reclaim_ms = max(1, int(reclaim_after * 1000))
        self._reclaim_every = max(0.05, reclaim_after / 4)
        self._next_reclaim = 0.0
        self._claim_from = "0-0"
        self._max_deliveries = max_deliveries
        self._forget_after_ms = int(forget_consumers_after * 1000)
        self._next_forget = 0.0
        self._group_ready = False
        self._bury = redis.register_script(_BURY)
        self._replay = redis.register_script(_REPLAY)

    async def put(self, platform: Platform, body: bytes) -> str:
        async with translate_errors():
            event_id = await self._redis.xadd(self.stream, {"p": platform.value, "b": body})
        return _s(event_id)

    async def take(self, consumer: str, limit: int, wait: float) -> list[QueuedEvent]:
        async with translate_errors():
            try:
                return await self._take(consumer, limit, wait)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # Redis lost the group (restarted without persistence): make it again, read from the start.
                self._group_ready = False
                return await self._take(consumer, limit, wait)

    async def _take(self, consumer: str, limit: int, wait: float) -> list[QueuedEvent]:
        if not self._group_ready:
            await self._create_group()
        events: list[QueuedEvent] = []
        if time.monotonic() >= self._next_reclaim:
            self._next_reclaim = time.monotonic() + self._reclaim_every
            events = await self._reclaim(consumer, limit)
        if time.monotonic() >= self._next_forget:
            self._next_forget = time.monotonic() + self._forget_after_ms / 4000
            await self.forget_idle_consumers(consumer)
        if len(events) < limit:
            reply: Any = await self._redis.xreadgroup(
                GROUP,
                consumer,
                {self.stream: ">"},
                count=limit - len(events),
                block=None if events else max(1, int(wait * 1000)),
            )
            for _stream, entries in reply or []:
                events.extend(self._event(entry_id, fields, 1) for entry_id, fields in entries)
        return events

    async def forget_idle_consumers(self, me: str) -> int:
        """Remove consumers of dead instances: silent for `forget_consumers_after` and holding nothing.

        Every instance picks a new consumer name when it starts, so without this the group
        would list every process that ever ran. A consumer still holding entries stays:
        XAUTOCLAIM moves them first.
        """
        consumers: Any = await self._redis.xinfo_consumers(self.stream, GROUP)
        forgotten = 0
        for c in consumers:
            name = _s(c["name"])
            if name != me and int(c["pending"]) == 0 and int(c["idle"]) >= self._forget_after_ms:
                await self._redis.xgroup_delconsumer(self.stream, GROUP, name)
                forgotten += 1
        return forgotten

    async def _create_group(self) -> None:
        try:
            # From "0": events stored before any consumer existed are routed too.
            await self._redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _reclaim(self, consumer: str, limit: int) -> list[QueuedEvent]:
        reply: Any = await self._redis.xautoclaim(
            self.stream, GROUP, consumer, self._reclaim_ms, start_id=self._claim_from, count=limit
        )
        self._claim_from = _s(reply[0])
        claimed = [(_s(i), f) for i, f in reply[1] if f]
        if not claimed:
            return []
        pending: Any = await self._redis.xpending_range(
            self.stream, GROUP, min=claimed[0][0], max=claimed[-1][0], count=len(claimed) * 4, consumername=consumer
        )
        counts = {_s(p["message_id"]): int(p["times_delivered"]) for p in pending}
        events = []
        for entry_id, fields in claimed:
            deliveries = counts.get(entry_id, self._max_deliveries + 1)
            event = self._event(entry_id, fields, deliveries)
            if deliveries > self._max_deliveries:
                reason = await self._redis.hget(self.errors, entry_id)
                why = _s(reason) if reason else "delivered too often without being acknowledged"
                await self._move_to_dead(replace(event, deliveries=deliveries - 1), why)
            else:
                events.append(event)
        return events

    def _event(self, entry_id: Any, fields: dict[bytes, bytes], deliveries: int) -> QueuedEvent:
        event_id = _s(entry_id)
        received = fields.get(b"r")
        return QueuedEvent(
            id=event_id,
            platform=Platform(_s(fields[b"p"])),
            body=fields[b"b"],
            received_at=_at(received if received else _ms(event_id)),
            deliveries=deliveries,
        )

    async def ack(self, event_ids: Sequence[str]) -> None:
        if not event_ids:
            return
        async with translate_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, GROUP, *event_ids)
            pipe.xdel(self.stream, *event_ids)
            pipe.hdel(self.errors, *event_ids)
            await pipe.execute()

    async def fail(self, event: QueuedEvent, reason: str) -> None:
        # The entry stays pending: XAUTOCLAIM hands it out again once it has been idle long enough.
        async with translate_errors():
            await self._redis.hset(self.errors, event.id, reason[:1000])

    async def dead_letter(self, event: QueuedEvent, reason: str) -> None:
        async with translate_errors():
            await self._move_to_dead(event, reason)

    async def _move_to_dead(self, event: QueuedEvent, reason: str) -> None:
        await self._bury(
            keys=[self.stream, self.dead, self.errors],
            args=[event.id, reason[:1000], event.deliveries, int(time.time() * 1000), _DEAD_CAP, GROUP],
        )

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        async with translate_errors():
            entries: Any = await self._redis.xrange(self.dead, count=limit)
        letters = []
        for entry_id, f in entries:
            letters.append(
                DeadLetter(
                    id=_s(entry_id),
                    event_id=_s(f[b"id"]),
                    platform=Platform(_s(f[b"p"])),
                    body=f[b"b"],
                    received_at=_at(f[b"r"]),
                    failed_at=_at(f[b"f"]),
                    deliveries=int(f[b"n"]),
                    reason=_s(f[b"why"]),
                )
            )
        return letters

    async def stats(self) -> QueueStats:
        # Acknowledged events are deleted from the stream, so its length is what is left to route.
        async with translate_errors():
            depth = int(await self._redis.xlen(self.stream))
            first: Any = await self._redis.xrange(self.stream, count=1) if depth else []
            dead = int(await self._redis.xlen(self.dead))
        age = max(0.0, time.time() - _ms(_s(first[0][0])) / 1000) if first else 0.0
        return QueueStats(depth, age, dead)

    async def replay(self, dead_letter_ids: Sequence[str] | None = None) -> int:
        replayed = 0
        async with translate_errors():
            if dead_letter_ids is not None:
                for dead_id in dead_letter_ids:
                    replayed += int(await self._replay(keys=[self.stream, self.dead], args=[dead_id]))
                return replayed
            while True:
                batch = await self._redis.xrange(self.dead, count=500)
                if not batch:
                    return replayed
                for entry_id, _ in batch:
                    replayed += int(await self._replay(keys=[self.stream, self.dead], args=[_s(entry_id)]))
