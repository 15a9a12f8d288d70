"""Where conversations and their messages are kept (per customer, 90 days, bounded per conversation)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from hermes.domain.conversations import Conversation, MessageView, Recorded
from hermes.domain.platform import Platform


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
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Conversation], str | None]:
        """Most recent activity first; the cursor continues after the last one returned (None: no more)."""
        ...

    async def get(self, customer_id: str, conversation_id: str) -> Conversation | None: ...

    async def messages(
        self, customer_id: str, conversation_id: str, cursor: str | None, limit: int
    ) -> tuple[list[MessageView], str | None]:
        """The newest `limit` messages older than the cursor, in time order; the cursor of the next older page."""
        ...

    async def mark_read(self, customer_id: str, conversation_id: str) -> None: ...

    async def note_receiving(self, customer_id: str, platform: Platform, business_id: str, now: datetime) -> None:
        """Webhooks for this business account (a WhatsApp number) reach this customer (kept 90 days)."""
        ...

    async def receiving(self, customer_id: str, platform: Platform, business_id: str) -> bool:
        """Whether webhooks for that business account reached this customer in the last 90 days."""
        ...
