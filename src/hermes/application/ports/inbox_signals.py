"""Waiting for a customer's inbox: a signal when it gains entries, and a cap on open waits."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol


class InboxListener(Protocol):
    async def wait(self, timeout: float) -> bool:
        """Return once the inbox may have gained entries since listening began or since the last
        return (True), or when `timeout` seconds pass (False). A spurious True is allowed: the
        caller reads the inbox again either way."""
        ...


class InboxSignals(Protocol):
    """Tells every waiter, on every instance, that a customer's inbox gained entries."""

    async def notify(self, customer_id: str) -> None: ...

    def listen(self, customer_id: str) -> AbstractAsyncContextManager[InboxListener]:
        """Signals for this customer from entry until exit; nothing is missed in between."""
        ...


class WaitSlots(Protocol):
    """How many waits a customer has open at once, counted across instances."""

    def hold(self, customer_id: str, limit: int, seconds: float) -> AbstractAsyncContextManager[bool]:
        """A slot for up to `seconds` (True), or False when `limit` are already held.

        A slot is given back on exit, and lapses on its own after `seconds` even if its
        holder died without exiting.
        """
        ...
