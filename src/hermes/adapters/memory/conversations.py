"""Conversations in process memory: the unit tests' twin of the Redis and SQL stores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from hermes.adapters.conversation_records import ms
from hermes.application.ports.conversations import ConversationStore, Position
from hermes.domain.conversations import (
    IN,
    MAX_MESSAGES_PER_CONVERSATION,
    STATUS_RANK,
    Conversation,
    ConversationKey,
    MessageView,
    Recorded,
    conversation_id,
    preview,
)
from hermes.domain.platform import Platform


@dataclass(slots=True)
class _Thread:
    head: Conversation
    messages: dict[str, MessageView] = field(default_factory=dict)


class InMemoryConversationStore(ConversationStore):
    def __init__(self) -> None:
        self._threads: dict[tuple[str, str], _Thread] = {}
        self._receiving: dict[tuple[str, Platform, str], datetime] = {}
        self._versions: dict[str, int] = {}

    async def record(self, customer_id: str, records: Sequence[Recorded], now: datetime) -> int:
        added = 0
        for r in records:
            added += self._record(customer_id, r)
        if added:
            self._changed(customer_id)
        return added

    def _changed(self, customer_id: str) -> None:
        self._versions[customer_id] = self._versions.get(customer_id, 0) + 1

    async def list_version(self, customer_id: str) -> str | None:
        version = self._versions.get(customer_id)
        return None if version is None else str(version)

    def _record(self, customer_id: str, r: Recorded) -> int:
        key: ConversationKey = r.key
        m = r.message
        thread = self._threads.get((customer_id, key.id))
        if thread is None:
            head = Conversation(
                id=key.id,
                platform=key.platform,
                account=key.account,
                peer=key.peer,
                title=r.title or key.peer,
                participants=r.participants,
                last_message_at=m.sent_at,
                last_message_preview=preview(m),
            )
            thread = self._threads[(customer_id, key.id)] = _Thread(head)
        elif m.message_id in thread.messages:
            return 0
        thread.messages[m.message_id] = m
        if len(thread.messages) > MAX_MESSAGES_PER_CONVERSATION:
            oldest = sorted(thread.messages.values(), key=lambda v: (ms(v.sent_at), v.message_id))
            for gone in oldest[: len(thread.messages) - MAX_MESSAGES_PER_CONVERSATION]:
                del thread.messages[gone.message_id]
        head = thread.head
        if r.title:
            head = replace(head, title=r.title)
        if r.participants:
            head = replace(head, participants=r.participants)
        if ms(m.sent_at) >= ms(head.last_message_at):
            head = replace(head, last_message_at=m.sent_at, last_message_preview=preview(m))
        if m.direction == IN:
            head = replace(head, unread_count=head.unread_count + 1)
            if head.last_inbound_at is None or m.sent_at > head.last_inbound_at:
                head = replace(head, last_inbound_at=m.sent_at)
        thread.head = head
        return 1

    async def set_status(
        self, customer_id: str, platform: Platform, account: str, peer: str, message_id: str, status: str
    ) -> None:
        thread = self._threads.get((customer_id, conversation_id(customer_id, platform, account, peer)))
        message = thread.messages.get(message_id) if thread else None
        if thread is None or message is None:
            return
        if STATUS_RANK.get(status, 0) > STATUS_RANK.get(message.status or "", 0):
            thread.messages[message_id] = replace(message, status=status)

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
        heads = sorted(
            (t.head for (cust, _), t in self._threads.items() if cust == customer_id),
            key=lambda h: (ms(h.last_message_at), h.id),
            reverse=True,
        )
        if after is not None:
            heads = [h for h in heads if (ms(h.last_message_at), h.id) < after]
        found = [
            h
            for h in heads
            if (platform is None or h.platform is platform)
            and (account is None or h.account == account)
            and (not unread_only or h.unread_count > 0)
        ]
        page = found[:limit]
        more = len(found) > limit
        return page, (ms(page[-1].last_message_at), page[-1].id) if more else None

    async def get(self, customer_id: str, conversation_id: str) -> Conversation | None:
        thread = self._threads.get((customer_id, conversation_id))
        return thread.head if thread else None

    async def messages(
        self, customer_id: str, conversation_id: str, before: Position | None, limit: int
    ) -> tuple[list[MessageView], Position | None]:
        thread = self._threads.get((customer_id, conversation_id))
        if thread is None:
            return [], None
        ordered = sorted(thread.messages.values(), key=lambda v: (ms(v.sent_at), v.message_id))
        if before is not None:
            ordered = [v for v in ordered if (ms(v.sent_at), v.message_id) < before]
        page = ordered[-limit:]
        more = len(ordered) > limit
        return page, (ms(page[0].sent_at), page[0].message_id) if more else None

    async def note_receiving(self, customer_id: str, platform: Platform, business_id: str, now: datetime) -> None:
        self._receiving[(customer_id, platform, business_id)] = now

    async def receiving(self, customer_id: str, platform: Platform, business_id: str) -> bool:
        return (customer_id, platform, business_id) in self._receiving

    async def mark_read(self, customer_id: str, conversation_id: str) -> None:
        thread = self._threads.get((customer_id, conversation_id))
        if thread is not None and thread.head.unread_count:
            thread.head = replace(thread.head, unread_count=0)
            self._changed(customer_id)
