"""Where conversations and their messages are kept (per customer, 90 days, bounded per conversation)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from hermes.domain.conversations import Conversation, MessageView, Recorded
from hermes.domain.platform import Platform

# A place in a time-ordered listing: (time in ms since the epoch, id). A listing continues strictly past it.
Position = tuple[int, str]


class ConversationStore(Protocol):
    async def record(self, customer_id: str, records: Sequence[Recorded], now: datetime) -> int:
        """Add each message to its conversation (made on first use) unless that conversation already holds its
        message id; returns how many were new. An inbound message counts as unread and moves the peer's
        last-message time; the conversation's newest message gives its preview and its place in the list.
        Beyond `MAX_MESSAGES_PER_CONVERSATION` the oldest messages go."""
        ...

    async def set_status(
        self, customer_id: str, platform: Platform, account: str, peer: str, message_id: str, status: str
    ) -> None:
        """Raise the status of a sent message (sent < delivered < read < failed); unknown messages are ignored."""
        ...

    async def recent(
        self,
        customer_id: str,
        *,
        platform: Platform | None,
        account: str | None,
        unread_only: bool,
        after: Position | None,
        limit: int,
    ) -> tuple[list[Conversation], Position | None]:
        """Most recent activity first (by time, then id), past `after`; at most `limit`, and the position the
        next page starts from (None: no more). A filtered page may hold fewer while more follow."""
        ...

    async def list_version(self, customer_id: str) -> str | None:
        """A token that changes whenever anything the list shows changes (a message, a read); None when this
        store keeps none. Read before a page, it tells whether a page read since is still the same."""
        ...

    async def get(self, customer_id: str, conversation_id: str) -> Conversation | None: ...

    async def messages(
        self, customer_id: str, conversation_id: str, before: Position | None, limit: int
    ) -> tuple[list[MessageView], Position | None]:
        """The newest `limit` messages before `before` (by time, then id), in time order; where the next older
        page starts (None: this page reaches the first message kept)."""
        ...

    async def mark_read(self, customer_id: str, conversation_id: str) -> None: ...

    async def note_receiving(self, customer_id: str, platform: Platform, business_id: str, now: datetime) -> None:
        """Webhooks for this business account (a WhatsApp number) reach this customer (kept 90 days)."""
        ...

    async def receiving(self, customer_id: str, platform: Platform, business_id: str) -> bool:
        """Whether webhooks for that business account reached this customer in the last 90 days."""
        ...
