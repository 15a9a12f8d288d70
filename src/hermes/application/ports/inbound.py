"""Inbound: the durable queue behind the webhook, the decoder of platform batches,
the customer's inbox, the count of numbers nobody owns, and the handler each new message goes to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from hermes.domain.inbound import InboxEntry, InboxItem
from hermes.domain.platform import Platform

# A queued event handed out this many times without being acknowledged goes to the dead letters.
MAX_DELIVERIES = 5


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """A webhook body as it was acknowledged, waiting to be routed."""

    id: str
    platform: Platform
    body: bytes
    received_at: datetime
    deliveries: int  # times handed out, this one included


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event that could not be routed; an operator can list it and replay it."""

    id: str
    event_id: str
    platform: Platform
    body: bytes
    received_at: datetime
    failed_at: datetime
    deliveries: int
    reason: str


class InboundQueue(Protocol):
    """At-least-once queue: an event put is handed out until acknowledged, surviving crashes of any consumer."""

    async def put(self, platform: Platform, body: bytes) -> str:
        """Store the event durably before returning its id; `Unavailable` when it cannot be stored."""
        ...

    async def take(self, consumer: str, limit: int, wait: float) -> list[QueuedEvent]:
        """Up to `limit` events for `consumer`, waiting up to `wait` seconds when there are none.

        Events held by a consumer that went quiet (crashed, or failed them) are handed out
        again; an event already handed out `MAX_DELIVERIES` times is moved to the dead
        letters instead.
        """
        ...

    async def ack(self, event_ids: Sequence[str]) -> None:
        """Routing finished: the events are gone for good."""
        ...

    async def fail(self, event: QueuedEvent, reason: str) -> None:
        """Routing failed for now: hand the event out again later (`reason` is kept for the dead letters)."""
        ...

    async def dead_letter(self, event: QueuedEvent, reason: str) -> None:
        """Routing can never succeed (a malformed body): move the event to the dead letters at once."""
        ...

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    async def replay(self, dead_letter_ids: Sequence[str] | None = None) -> int:
        """Put dead letters (all of them when None) back on the queue; the number replayed."""
        ...


class Inbox(Protocol):
    """A customer's inbound messages and status updates, oldest first, kept 90 days."""

    async def append(self, customer_id: str, items: Sequence[InboxItem], now: datetime) -> list[InboxEntry]:
        """Append the items not appended in the dedupe window (by `dedupe_key`); returns those appended.

        Checking and appending are one atomic step, so concurrent deliveries of the
        same event add an item once.
        """
        ...

    async def list(
        self, customer_id: str, after: str | None, limit: int, platform: Platform | None = None
    ) -> tuple[list[InboxEntry], str | None]:
        """Entries after the cursor `after`, oldest first, and the cursor to continue from (None: nothing read)."""
        ...

    async def tail(self, customer_id: str) -> str | None:
        """The cursor of the newest entry (None for an empty inbox): reading after it returns what comes next."""
        ...


class UnroutedNumbers(Protocol):
    """Items that arrived for business numbers no customer owns: counted, logged, never retried."""

    async def record(self, platform: Platform, business_id: str, items: int, now: datetime) -> None: ...

    async def counts(self) -> list[tuple[Platform, str, int, datetime]]:
        """(platform, business id, items, last seen) for every unrouted number."""
        ...


class InboundHandler(Protocol):
    """The seed's handleInbound: told about every entry newly added to a customer's inbox."""

    async def handle(self, customer_id: str, entries: Sequence[InboxEntry]) -> None: ...
