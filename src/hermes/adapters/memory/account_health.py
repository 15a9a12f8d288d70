"""The health-check schedule in one process: embedded mode (one server) and unit tests."""

from __future__ import annotations

import heapq

from hermes.application.ports.account_health import HealthSchedule
from hermes.domain.account_health import AccountRef


class InMemoryHealthSchedule(HealthSchedule):
    def __init__(self) -> None:
        self.due: dict[AccountRef, float] = {}
        self._heap: list[tuple[float, str, AccountRef]] = []  # may hold stale times; `due` is the truth

    def _push(self, account: AccountRef, at: float) -> None:
        self.due[account] = at
        heapq.heappush(self._heap, (at, account.key(), account))
        if len(self._heap) > 4 * len(self.due) + 64:  # drop stale entries now and then
            self._heap = [(t, k, a) for a, t in self.due.items() for k in (a.key(),)]
            heapq.heapify(self._heap)

    async def add(self, account: AccountRef, at: float) -> bool:
        if account in self.due:
            return False
        self._push(account, at)
        return True

    async def set(self, account: AccountRef, at: float) -> None:
        self._push(account, at)

    async def remove(self, account: AccountRef) -> None:
        self.due.pop(account, None)

    async def claim(self, now: float, limit: int, lease: float) -> list[AccountRef]:
        claimed: list[AccountRef] = []
        while self._heap and len(claimed) < limit and self._heap[0][0] <= now:
            at, _, account = heapq.heappop(self._heap)
            if self.due.get(account) != at:
                continue  # rescheduled or removed since
            claimed.append(account)
        for account in claimed:
            self._push(account, now + lease)
        return claimed

    async def size(self) -> int:
        return len(self.due)
