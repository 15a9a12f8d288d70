from __future__ import annotations

import re
from dataclasses import dataclass

from hermes.application.ports.inbound import Inbox
from hermes.domain.errors import Invalid
from hermes.domain.inbound import InboxEntry
from hermes.domain.platform import Platform

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# At most 18 digits a part: both a Redis stream id and a signed 64-bit SQL key hold them.
# `(?!\n)`: Python's `$` also matches before a final newline; published schemas keep plain `$` semantics.
CURSOR_PATTERN = r"^[0-9]{1,18}(-[0-9]{1,18})?$(?!\n)"
CURSOR_MAX_LENGTH = 37  # the pattern's longest match
_CURSOR = re.compile(CURSOR_PATTERN)


@dataclass(frozen=True, slots=True)
class InboxPage:
    entries: list[InboxEntry]
    next_cursor: str | None  # pass it back to read what came after; None when the inbox is empty


@dataclass(slots=True)
class ListInbox:
    """Inbound messages and status updates routed to this customer, oldest first.

    Each entry names the customer's account on the platform that received it (`default`,
    or the name given when connecting a further account). Messages carry the sender, the
    contact name, the text or a media reference and the message they reply to; status
    updates say what became of a message the customer sent (sent, delivered, read, failed
    with the platform's error code). Pass the returned cursor back to read on: an empty
    page with the same cursor means nothing new has arrived yet. Entries are kept 90 days.
    A customer sees only its own inbox.
    """

    inbox: Inbox

    async def __call__(
        self, customer_id: str, platform: str | None = None, cursor: str | None = None, limit: int | None = None
    ) -> InboxPage:
        errors: dict[str, str] = {}
        wanted: Platform | None = None
        if platform:
            try:
                wanted = Platform(platform)
            except ValueError:
                errors["platform"] = "must be one of " + ", ".join(p.value for p in Platform)
        if cursor is not None and not _CURSOR.fullmatch(cursor):
            errors["cursor"] = "must be a cursor returned by an earlier call"
        size = DEFAULT_LIMIT if limit is None else limit
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_LIMIT:
            errors["limit"] = f"must be between 1 and {MAX_LIMIT}"
        if errors:
            raise Invalid("; ".join(f"{name} {why}" for name, why in sorted(errors.items())), errors)
        entries, next_cursor = await self.inbox.list(customer_id, cursor or None, size, wanted)
        return InboxPage(entries, next_cursor or cursor)
