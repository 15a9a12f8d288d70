"""In-process inbox signals and wait slots: embedded mode (one process) and unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from hermes.application.ports.inbox_signals import InboxListener, InboxSignals, WaitSlots


class EventListener(InboxListener):
    """One waiter's flag: set by a signal, cleared when the waiter wakes."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                await self.event.wait()
        except TimeoutError:
            return False
        self.event.clear()
        return True


class LocalListeners:
    """The listeners of this process by customer; what both signal adapters fan out to."""

    def __init__(self) -> None:
        self._by_customer: dict[str, set[EventListener]] = {}

    @asynccontextmanager
    async def listen(self, customer_id: str) -> AsyncIterator[InboxListener]:
        listener = EventListener()
        self._by_customer.setdefault(customer_id, set()).add(listener)
        try:
            yield listener
        finally:
            listeners = self._by_customer[customer_id]
            listeners.discard(listener)
            if not listeners:
                del self._by_customer[customer_id]

    def wake(self, customer_id: str) -> None:
        for listener in self._by_customer.get(customer_id, ()):
            listener.event.set()

    def wake_all(self) -> None:
        for listeners in self._by_customer.values():
            for listener in listeners:
                listener.event.set()

    def count(self) -> int:
        return sum(len(listeners) for listeners in self._by_customer.values())


class InMemoryInboxSignals(InboxSignals):
    def __init__(self) -> None:
        self.listeners = LocalListeners()

    async def notify(self, customer_id: str) -> None:
        self.listeners.wake(customer_id)

    def listen(self, customer_id: str) -> AbstractAsyncContextManager[InboxListener]:
        return self.listeners.listen(customer_id)


class InMemoryWaitSlots(WaitSlots):
    def __init__(self) -> None:
        self.held: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, customer_id: str, limit: int, seconds: float) -> AsyncIterator[bool]:
        # One process: a holder that dies takes the process with it, so `seconds` needs no timer here.
        if self.held.get(customer_id, 0) >= limit:
            yield False
            return
        self.held[customer_id] = self.held.get(customer_id, 0) + 1
        try:
            yield True
        finally:
            self.held[customer_id] -= 1
            if not self.held[customer_id]:
                del self.held[customer_id]
