"""Schedules of accounts (health checks, token renewals) and the progress of once-per-deployment jobs, in one
process: embedded mode (one server) and unit tests."""

from __future__ import annotations

import heapq
import time
from collections.abc import Mapping

from hermes.application.ports.account_health import AccountSchedule, BackfillProgress
from hermes.domain.account_health import AccountRef


class InMemoryAccountSchedule(AccountSchedule):
    def __init__(self) -> None:
        self.due: dict[AccountRef, float] = {}
        self._heap: list[tuple[float, str, AccountRef]] = []  # may hold stale times; `due` is the truth

    def _push(self, account: AccountRef, at: float) -> None:
        self.due[account] = at
        heapq.heappush(self._heap, (at, account.key(), account))
        if len(self._heap) > 4 * len(self.due) + 64:  # drop stale entries now and then
            self._heap = [(t, k, a) for a, t in self.due.items() for k in (a.key(),)]
            heapq.heapify(self._heap)

    async def add(self, due: Mapping[AccountRef, float]) -> int:
        fresh = [(account, at) for account, at in due.items() if account not in self.due]
        for account, at in fresh:
            self._push(account, at)
        return len(fresh)

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


class InMemoryBackfillProgress(BackfillProgress):
    """One process: a schedule lives as long as this record, so each start runs the job once."""

    def __init__(self) -> None:
        self.finished = False
        self.position = ""
        self.holder: str | None = None
        self.until = 0.0

    def _held_by_another(self, holder: str) -> bool:
        return self.holder not in (None, holder) and time.monotonic() < self.until

    async def done(self) -> bool:
        return self.finished

    async def take(self, holder: str, lease: float) -> str | None:
        if self.finished or self._held_by_another(holder):
            return None
        self.holder, self.until = holder, time.monotonic() + lease
        return self.position

    async def advance(self, holder: str, position: str, lease: float) -> bool:
        if self.holder != holder or time.monotonic() >= self.until:
            return False
        self.position, self.until = position, time.monotonic() + lease
        return True

    async def finish(self, holder: str) -> None:
        self.finished, self.position = True, ""
        if self.holder == holder:
            self.holder = None
