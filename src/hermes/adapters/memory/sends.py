"""The send guards' state in process memory: unit tests, and one embedded process."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from hermes.application.ports.sends import IdempotencyKeys, PendingSends, PolicyStore, RecipientLedger
from hermes.domain.sends import IdempotencyRecord, PendingSend, PendingState, SendPolicy


class InMemoryPolicyStore(PolicyStore):
    def __init__(self) -> None:
        self._policies: dict[str, SendPolicy] = {}

    async def get(self, customer_id: str) -> SendPolicy | None:
        return self._policies.get(customer_id)

    async def put(self, customer_id: str, policy: SendPolicy) -> None:
        self._policies[customer_id] = policy


class InMemoryIdempotencyKeys(IdempotencyKeys):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._records: dict[tuple[str, str], tuple[IdempotencyRecord, float]] = {}
        self._clock = clock

    def _live(self, slot: tuple[str, str]) -> tuple[IdempotencyRecord, float] | None:
        held = self._records.get(slot)
        if held is not None and held[1] <= self._clock():
            del self._records[slot]
            return None
        return held

    async def claim(
        self, customer_id: str, key_digest: str, record: IdempotencyRecord, ttl: int
    ) -> IdempotencyRecord | None:
        held = self._live((customer_id, key_digest))
        if held is not None:
            return held[0]
        self._records[(customer_id, key_digest)] = (record, self._clock() + ttl)
        return None

    async def get(self, customer_id: str, key_digest: str) -> IdempotencyRecord | None:
        held = self._live((customer_id, key_digest))
        return held[0] if held else None

    async def settle(self, customer_id: str, key_digest: str, record: IdempotencyRecord) -> None:
        held = self._live((customer_id, key_digest))
        if held is not None:
            self._records[(customer_id, key_digest)] = (record, held[1])

    async def release(self, customer_id: str, key_digest: str) -> None:
        self._records.pop((customer_id, key_digest), None)


class InMemoryRecipientLedger(RecipientLedger):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}
        self._known: set[tuple[str, str]] = set()
        self._clock = clock

    async def count(self, customer_id: str, recipient_digest: str, limit: int, window: int = 3600) -> float | None:
        now = self._clock()
        slot = (customer_id, recipient_digest, int(now // window))
        if self._counts.get(slot, 0) >= limit:
            return window - now % window
        self._counts[slot] = self._counts.get(slot, 0) + 1
        return None

    async def known(self, customer_id: str, recipient_digest: str) -> bool:
        return (customer_id, recipient_digest) in self._known

    async def remember(self, customer_id: str, recipient_digest: str) -> None:
        self._known.add((customer_id, recipient_digest))


class InMemoryPendingSends(PendingSends):
    def __init__(self) -> None:
        self._sends: dict[tuple[str, str], PendingSend] = {}

    async def add(self, pending: PendingSend, ttl: int, max_pending: int) -> bool:
        if len(await self.waiting(pending.customer_id, max_pending)) >= max_pending:
            return False
        self._sends[(pending.customer_id, pending.id)] = pending
        return True

    async def get(self, customer_id: str, approval_id: str) -> PendingSend | None:
        return self._sends.get((customer_id, approval_id))

    async def waiting(self, customer_id: str, limit: int = 100) -> list[PendingSend]:
        mine = [p for (c, _), p in self._sends.items() if c == customer_id and p.state is PendingState.PENDING]
        return sorted(mine, key=lambda p: p.requested_at)[:limit]

    async def move(self, customer_id: str, approval_id: str, old: PendingState, new: PendingState) -> bool:
        pending = self._sends.get((customer_id, approval_id))
        if pending is None or pending.state is not old:
            return False
        self._sends[(customer_id, approval_id)] = replace(pending, state=new)
        return True

    async def customers(self) -> list[str]:
        return sorted({c for (c, _), p in self._sends.items() if p.state is PendingState.PENDING})

    async def forget(self, customer_id: str) -> None:
        return None  # the work list is computed from the held sends themselves
