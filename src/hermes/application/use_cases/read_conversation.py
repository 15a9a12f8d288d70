from __future__ import annotations

from dataclasses import dataclass, replace

from hermes.application.conversation_cursor import decode_cursor, encode_cursor
from hermes.application.ports.clock import Clock
from hermes.application.ports.conversations import ConversationStore
from hermes.domain.conversations import ConversationView, MessageView, view
from hermes.domain.errors import Invalid, NotFound

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
CONVERSATION_ID_PATTERN = r"^c[0-9a-f]{23}$(?!\n)"


def not_found(conversation_id: str) -> NotFound:
    return NotFound(
        f"there is no conversation {conversation_id!r} on this account",
        fix="take a conversation_id from conversations_list",
    )


@dataclass(frozen=True, slots=True)
class ConversationMessages:
    conversation: ConversationView
    messages: list[MessageView]
    next_cursor: str | None  # older messages; None: this page reaches the first one kept


@dataclass(slots=True)
class ReadConversation:
    """The latest messages of one conversation, both directions, in time order; the cursor pages to older ones.

    Reading marks the conversation read (its unread count goes to 0). Sent messages carry their
    delivery status (sent, delivered, read, failed) as the platform reports it.
    """

    store: ConversationStore
    clock: Clock

    async def __call__(
        self,
        customer_id: str,
        conversation_id: str,
        cursor: str | None = None,
        limit: int | None = None,
        *,
        mark_read: bool = True,
    ) -> ConversationMessages:
        size = DEFAULT_LIMIT if limit is None else limit
        if isinstance(size, bool) or not 1 <= size <= MAX_LIMIT:
            raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", {"limit": f"must be between 1 and {MAX_LIMIT}"})
        conversation = await self.store.get(customer_id, conversation_id)
        if conversation is None:
            raise not_found(conversation_id)
        messages, older = await self.store.messages(customer_id, conversation_id, decode_cursor(cursor), size)
        if mark_read and conversation.unread_count:
            await self.store.mark_read(customer_id, conversation_id)
            conversation = replace(conversation, unread_count=0)
        return ConversationMessages(view(conversation, self.clock.now()), messages, encode_cursor(older))
