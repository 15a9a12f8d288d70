"""Polled accounts in process memory (unit tests): the same rules as the Redis and SQL stores."""

from __future__ import annotations

import time
from collections.abc import Callable

from hermes.application.ports.mailboxes import Mailboxes, MailboxState, PolledAccount


class InMemoryMailboxes(Mailboxes):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._members: set[PolledAccount] = set()
        self._leases: dict[PolledAccount, tuple[str, float]] = {}
        self._states: dict[PolledAccount, MailboxState] = {}

    async def add(self, account: PolledAccount) -> None:
        self._members.add(account)
        self._states.pop(account, None)

    async def remove(self, account: PolledAccount) -> None:
        self._members.discard(account)
        self._states.pop(account, None)

    async def members(self) -> list[PolledAccount]:
        return sorted(self._members)

    def _holder(self, account: PolledAccount) -> tuple[str, float] | None:
        lease = self._leases.get(account)
        if lease is not None and lease[1] <= self._clock():
            del self._leases[account]
            return None
        return lease

    async def lease(self, account: PolledAccount, holder: str, seconds: float) -> float:
        current = self._holder(account)
        if current is not None and current[0] != holder:
            return max(current[1] - self._clock(), 0.001)
        self._leases[account] = (holder, self._clock() + seconds)
        return 0.0

    async def hold(self, account: PolledAccount, holder: str, seconds: float) -> bool:
        current = self._holder(account)
        if current is not None and current[0] != holder:
            return False
        self._leases[account] = (holder, self._clock() + seconds)
        return True

    async def release(self, account: PolledAccount, holder: str) -> None:
        current = self._holder(account)
        if current is not None and current[0] == holder:
            del self._leases[account]

    async def state(self, account: PolledAccount) -> MailboxState:
        return self._states.get(account, MailboxState())

    async def save(self, account: PolledAccount, state: MailboxState) -> None:
        self._states[account] = state
