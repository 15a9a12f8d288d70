from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hermes.application.ports.inbound import Inbox
from hermes.application.ports.inbox_signals import InboxSignals, WaitSlots
from hermes.application.use_cases.list_inbox import DEFAULT_LIMIT, ListInbox
from hermes.domain.errors import Invalid, RateLimited
from hermes.domain.inbound import InboxEntry

MAX_WAIT_SECONDS = 25
# A slot outlives its wait by this much, so that one whose holder died still frees itself soon.
_SLOT_MARGIN_SECONDS = 5


@dataclass(frozen=True, slots=True)
class InboxWait:
    entries: list[InboxEntry]
    next_cursor: str | None
    timed_out: bool


@dataclass(slots=True)
class WaitForInbox:
    """Wait for inbound messages and status updates newer than a cursor, then return them.

    When the inbox already holds entries after the cursor they are returned at once, as
    `inbox_list` would. Otherwise the call waits until one arrives, on whichever instance
    received it, or until the timeout (at most 25 seconds) passes; then the answer is
    empty, says it timed out, and carries the cursor to wait from next. Without a cursor
    the wait starts from the newest entry, so only what arrives after the call is
    returned. A customer has at most `max_waits` waits open at once.
    """

    list_inbox: ListInbox
    inbox: Inbox
    signals: InboxSignals
    slots: WaitSlots
    max_waits: int

    async def __call__(
        self, customer_id: str, cursor: str | None = None, timeout_seconds: float = MAX_WAIT_SECONDS
    ) -> InboxWait:
        if (
            isinstance(timeout_seconds, bool)
            or not isinstance(timeout_seconds, int | float)
            or not 0 <= timeout_seconds <= MAX_WAIT_SECONDS
        ):
            raise Invalid(
                f"timeout_seconds must be a number from 0 to {MAX_WAIT_SECONDS}",
                {"timeout_seconds": f"must be a number from 0 to {MAX_WAIT_SECONDS}"},
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        async with self.slots.hold(customer_id, self.max_waits, timeout_seconds + _SLOT_MARGIN_SECONDS) as held:
            if not held:
                raise RateLimited(
                    f"{self.max_waits} waits for new messages are already open for this account; "
                    "keep one wait open at a time and let it finish before starting another",
                    retry_after=MAX_WAIT_SECONDS,
                )
            # Listening starts before the first read: whatever arrives after that read wakes us.
            async with self.signals.listen(customer_id) as listener:
                after = cursor if cursor is not None else await self.inbox.tail(customer_id)
                while True:
                    page = await self.list_inbox(customer_id, None, after, DEFAULT_LIMIT)
                    if page.entries:
                        return InboxWait(page.entries, page.next_cursor, timed_out=False)
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return InboxWait([], after, timed_out=True)
                    await listener.wait(remaining)
