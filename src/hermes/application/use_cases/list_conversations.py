from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from hermes.application.conversation_cursor import decode_cursor, encode_cursor
from hermes.application.ports.clock import Clock
from hermes.application.ports.conversations import ConversationStore
from hermes.domain.conversations import CONVERSATION_RETENTION_SECONDS, ConversationView, V, view
from hermes.domain.errors import Invalid
from hermes.domain.platform import Platform

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
ACCOUNT_PATTERN = r"^[a-z0-9_-]{1,32}$(?!\n)"
_RETENTION = timedelta(seconds=CONVERSATION_RETENTION_SECONDS)
# A kept page is rendered afresh at least this often, whatever the version says.
PAGE_MAX_AGE = timedelta(minutes=5)


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
        views, cursor = await self.page(ConversationView, customer_id, platform, account, unread_only, cursor, limit)
        return ConversationPage(views, cursor)

    async def page(
        self,
        shape: Callable[..., V],
        customer_id: str,
        platform: Platform | None = None,
        account: str | None = None,
        unread_only: bool = False,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> tuple[list[V], str | None]:
        """The page as `shape`s (built from `ConversationView`'s fields by name), and the next page's cursor."""
        size = DEFAULT_LIMIT if limit is None else limit
        if isinstance(size, bool) or not 1 <= size <= MAX_LIMIT:
            raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", {"limit": f"must be between 1 and {MAX_LIMIT}"})
        after = decode_cursor(cursor)
        found, following = await self.store.recent(
            customer_id, platform=platform, account=account, unread_only=unread_only, after=after, limit=size
        )
        now = self.clock.now()
        # A conversation idle past the retention is gone (its messages with it) even where the store still lists it
        # until its next write; the list is ordered by that time, so all that follows it is older still.
        idle = now - _RETENTION
        if found and found[-1].last_message_at < idle:
            found, following = [c for c in found if c.last_message_at >= idle], None
        return [view(c, now, shape) for c in found], encode_cursor(following)

    async def version(self, customer_id: str) -> str | None:
        """What `RenderedPages` compares: read it before the page it is kept with (None: pages are not kept)."""
        return await self.store.list_version(customer_id)


class Listed(Protocol):
    """What `unchanged_until` reads of a conversation shown (a `ConversationView`, or an edge's twin of it)."""

    last_message_at: datetime
    can_reply: bool
    reply_window_expires_at: datetime | None


def unchanged_until(conversations: Sequence[Listed], now: datetime) -> datetime:
    """Until when a page reads the same if nothing is written: a reply window closing changes `can_reply`, and
    the oldest conversation shown leaves the list once idle past the retention."""
    until = now + PAGE_MAX_AGE
    for c in conversations:
        if c.can_reply and c.reply_window_expires_at is not None and c.reply_window_expires_at < until:
            until = c.reply_window_expires_at
    if conversations:
        until = min(until, conversations[-1].last_message_at + _RETENTION)
    return until


Rendered = TypeVar("Rendered")


@dataclass(slots=True)
class RenderedPages(Generic[Rendered]):
    """Conversation pages as an edge last rendered them, by customer and query, reused while the customer's list
    keeps the version read before the page and its time has not run out (`unchanged_until`).

    An agent waiting for replies lists the same page again and again; between two messages, every such call
    would decode, judge and render the same conversations. The version lives with the store, so a write through
    any instance is seen by every other at its next call. The least recently used page gives way first.
    """

    size: int = 256
    _pages: OrderedDict[tuple[str, str], tuple[str, datetime, Rendered]] = field(default_factory=OrderedDict)

    def get(self, customer_id: str, query: str, version: str | None, now: datetime) -> Rendered | None:
        key = (customer_id, query)
        kept = self._pages.get(key)
        if kept is None or version is None or kept[0] != version or now >= kept[1]:
            return None
        self._pages.move_to_end(key)
        return kept[2]

    def put(
        self,
        customer_id: str,
        query: str,
        version: str | None,
        conversations: Sequence[Listed],
        now: datetime,
        rendered: Rendered,
    ) -> None:
        if version is None or not self.size:
            return
        self._pages[(customer_id, query)] = (version, unchanged_until(conversations, now), rendered)
        self._pages.move_to_end((customer_id, query))
        while len(self._pages) > self.size:
            self._pages.popitem(last=False)
