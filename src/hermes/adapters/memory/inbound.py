"""In-memory inbound queue, inbox, unrouted counts and callback store, for unit tests.

They keep the real adapters' semantics (redelivery after `reclaim_after`, dead
letters after `max_deliveries`, dedupe window, cursors), so the same contract
tests pass against them.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hermes.application.ports.callbacks import KEPT_DELIVERIES, CallbackStore
from hermes.application.ports.inbound import (
    MAX_DELIVERIES,
    DeadLetter,
    InboundQueue,
    Inbox,
    QueuedEvent,
    UnroutedNumbers,
)
from hermes.application.ports.queue_stats import QueueStats
from hermes.domain.callbacks import Callback, Delivery
from hermes.domain.inbound import DEDUPE_WINDOW_SECONDS, InboxEntry, InboxItem
from hermes.domain.platform import Platform


@dataclass(slots=True)
class _Held:
    event: QueuedEvent
    available_at: float  # monotonic time from which it may be handed out (again)
    error: str | None = None


class InMemoryInboundQueue(InboundQueue):
    def __init__(self, reclaim_after: float = 30.0, max_deliveries: int = MAX_DELIVERIES) -> None:
        self.reclaim_after = reclaim_after
        self.max_deliveries = max_deliveries
        self.events: dict[str, _Held] = {}
        self.dead: dict[str, DeadLetter] = {}
        self._ids = itertools.count(1)
        self._arrived = asyncio.Event()

    async def put(self, platform: Platform, body: bytes) -> str:
        event_id = str(next(self._ids))
        self.events[event_id] = _Held(QueuedEvent(event_id, platform, body, datetime.now(UTC), 0), 0.0)
        self._arrived.set()
        return event_id

    async def take(self, consumer: str, limit: int, wait: float) -> list[QueuedEvent]:
        deadline = time.monotonic() + wait
        while True:
            taken = self._take(limit)
            if taken or time.monotonic() >= deadline:
                return taken
            self._arrived.clear()
            try:
                async with asyncio.timeout(max(0.0, min(deadline, self._next_available()) - time.monotonic())):
                    await self._arrived.wait()
            except TimeoutError:
                pass

    def _next_available(self) -> float:
        waiting = [h.available_at for h in self.events.values()]
        return min(waiting) if waiting else float("inf")

    def _take(self, limit: int) -> list[QueuedEvent]:
        now = time.monotonic()
        taken: list[QueuedEvent] = []
        for _, held in sorted(self.events.items(), key=lambda kv: int(kv[0])):
            if len(taken) >= limit:
                break
            if held.available_at > now:
                continue
            event = replace(held.event, deliveries=held.event.deliveries + 1)
            if event.deliveries > self.max_deliveries:
                self._bury(held.event, held.error or "delivered too often without being acknowledged")
                continue
            held.event = event
            held.available_at = now + self.reclaim_after
            taken.append(event)
        return taken

    async def ack(self, event_ids: Sequence[str]) -> None:
        for event_id in event_ids:
            self.events.pop(event_id, None)

    async def fail(self, event: QueuedEvent, reason: str) -> None:
        held = self.events.get(event.id)
        if held is not None:
            held.error = reason

    async def dead_letter(self, event: QueuedEvent, reason: str) -> None:
        if event.id in self.events:
            self._bury(self.events[event.id].event, reason)

    def _bury(self, event: QueuedEvent, reason: str) -> None:
        del self.events[event.id]
        dead_id = str(next(self._ids))
        self.dead[dead_id] = DeadLetter(
            dead_id,
            event.id,
            event.platform,
            event.body,
            event.received_at,
            datetime.now(UTC),
            event.deliveries,
            reason,
        )

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return list(self.dead.values())[:limit]

    async def stats(self) -> QueueStats:
        oldest = min((h.event.received_at for h in self.events.values()), default=None)
        age = 0.0 if oldest is None else max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        return QueueStats(len(self.events), age, len(self.dead))

    async def replay(self, dead_letter_ids: Sequence[str] | None = None) -> int:
        chosen = list(self.dead) if dead_letter_ids is None else [i for i in dead_letter_ids if i in self.dead]
        for dead_id in chosen:
            letter = self.dead.pop(dead_id)
            event_id = await self.put(letter.platform, letter.body)
            held = self.events[event_id]
            held.event = replace(held.event, received_at=letter.received_at)
        return len(chosen)


class InMemoryInbox(Inbox):
    def __init__(self) -> None:
        self.entries: dict[str, list[InboxEntry]] = {}
        self.seen: dict[tuple[str, str], datetime] = {}
        self._ids = itertools.count(1)

    async def append(self, customer_id: str, items: Sequence[InboxItem], now: datetime) -> list[InboxEntry]:
        fresh: list[InboxEntry] = []
        for item in items:
            key = (customer_id, item.dedupe_key)
            expires = self.seen.get(key)
            if expires is not None and expires > now:
                continue
            self.seen[key] = now + timedelta(seconds=DEDUPE_WINDOW_SECONDS)
            entry = InboxEntry(str(next(self._ids)), now, item)
            self.entries.setdefault(customer_id, []).append(entry)
            fresh.append(entry)
        return fresh

    async def list(
        self, customer_id: str, after: str | None, limit: int, platform: Platform | None = None
    ) -> tuple[list[InboxEntry], str | None]:
        after_id = int(after.split("-")[0]) if after else 0
        later = [e for e in self.entries.get(customer_id, []) if int(e.id) > after_id]
        chosen = [e for e in later if platform is None or e.platform is platform][:limit]
        if not chosen:
            return [], None
        return chosen, chosen[-1].id

    async def tail(self, customer_id: str) -> str | None:
        entries = self.entries.get(customer_id)
        return entries[-1].id if entries else None


class InMemoryUnroutedNumbers(UnroutedNumbers):
    def __init__(self) -> None:
        self.numbers: dict[tuple[Platform, str], tuple[int, datetime]] = {}

    async def record(self, platform: Platform, business_id: str, items: int, now: datetime) -> None:
        count, _ = self.numbers.get((platform, business_id), (0, now))
        self.numbers[(platform, business_id)] = (count + items, now)

    async def counts(self) -> list[tuple[Platform, str, int, datetime]]:
        return [(p, b, n, at) for (p, b), (n, at) in sorted(self.numbers.items())]


class InMemoryCallbackStore(CallbackStore):
    def __init__(self) -> None:
        self.callbacks: dict[str, Callback] = {}
        self.history: dict[str, list[Delivery]] = {}
        self.leases: dict[str, tuple[str, float]] = {}

    async def put(self, callback: Callback) -> None:
        self.callbacks[callback.customer_id] = callback

    async def get(self, customer_id: str) -> Callback | None:
        return self.callbacks.get(customer_id)

    async def replace_secret(self, customer_id: str, old: bytes, new: bytes) -> bool:
        current = self.callbacks.get(customer_id)
        if current is None or current.secret_envelope != old:
            return False
        self.callbacks[customer_id] = replace(current, secret_envelope=new)
        return True

    async def delete(self, customer_id: str) -> bool:
        self.history.pop(customer_id, None)
        return self.callbacks.pop(customer_id, None) is not None

    async def advance(
        self,
        customer_id: str,
        registration: str,
        cursor: str | None,
        failures: int,
        next_attempt_at: datetime | None,
    ) -> bool:
        current = self.callbacks.get(customer_id)
        if current is None or current.registration != registration:
            return False
        self.callbacks[customer_id] = replace(
            current, cursor=cursor, failures=failures, next_attempt_at=next_attempt_at
        )
        return True

    async def record(self, customer_id: str, delivery: Delivery) -> None:
        kept = self.history.setdefault(customer_id, [])
        kept.insert(0, delivery)
        del kept[KEPT_DELIVERIES:]

    async def deliveries(self, customer_id: str, limit: int = KEPT_DELIVERIES) -> list[Delivery]:
        return self.history.get(customer_id, [])[:limit]

    async def customers(self) -> list[str]:
        return sorted(self.callbacks)

    async def lease(self, customer_id: str, owner: str, seconds: float) -> bool:
        holder = self.leases.get(customer_id)
        if holder is not None and holder[1] > time.monotonic():
            return False
        self.leases[customer_id] = (owner, time.monotonic() + seconds)
        return True

    async def unlease(self, customer_id: str, owner: str) -> None:
        if self.leases.get(customer_id, ("", 0.0))[0] == owner:
            del self.leases[customer_id]
