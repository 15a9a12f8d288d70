from __future__ import annotations

from dataclasses import dataclass

from hermes.application.conversation_cursor import decode_cursor, encode_cursor
from hermes.application.ports.clock import Clock
from hermes.application.ports.conversations import ConversationStore
from hermes.domain.conversations import ConversationView, view
from hermes.domain.errors import Invalid
from hermes.domain.platform import Platform

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
ACCOUNT_PATTERN = r"^[a-z0-9_-]{1,32}$(?!\n)"


@dataclass(frozen=True, slots=True)
class ConversationPage:
    conversations: list[ConversationView]
    next_cursor: str | None  # None: this was the last page


@dataclass(slots=True)
class ListConversations:
    """This account's conversations on every platform, most recent activity first.

    Each shows its peer, the last message (time and a short preview), how many received
    messages are unread, and whether a free-form reply is possible now: WhatsApp and
    Instagram accept one only within 24 hours of the peer's last message
    (`reply_window_expires_at`). Pass the returned cursor to read older conversations; a filtered
    page may hold fewer than `limit` while a cursor says more follow.
    """

    store: ConversationStore
    clock: Clock

    async def __call__(
        self,
        customer_id: str,
        platform: Platform | None = None,
        account: str | None = None,
        unread_only: bool = False,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> ConversationPage:
        size = DEFAULT_LIMIT if limit is None else limit
        if isinstance(size, bool) or not 1 <= size <= MAX_LIMIT:
            raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", {"limit": f"must be between 1 and {MAX_LIMIT}"})
        after = decode_cursor(cursor)
        found, following = await self.store.recent(
            customer_id, platform=platform, account=account, unread_only=unread_only, after=after, limit=size
        )
        now = self.clock.now()
        return ConversationPage([view(c, now) for c in found], encode_cursor(following))
