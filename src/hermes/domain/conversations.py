"""Conversations: everything sent and received with one peer on one account, whatever the platform.

A conversation is keyed by customer, platform, account and peer (the WhatsApp contact, the
Telegram chat, the Discord channel, the root Message-ID of an email thread); its id is a
short hash of those, opaque and stable. `ConversationView` and `MessageView` are the one
shape clients see: tools return them snake_case, the HTTP API camelCase.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from hermes.domain.inbound import INBOX_RETENTION_SECONDS
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT as DEFAULT_ACCOUNT  # declared once, with account names
from hermes.domain.platform import Platform

IN, OUT = "in", "out"
# Kept like the inbox; the oldest messages of a long conversation give way first.
CONVERSATION_RETENTION_SECONDS = INBOX_RETENTION_SECONDS
MAX_MESSAGES_PER_CONVERSATION = 500
PREVIEW_CHARS = 120
# A long email keeps its beginning in the conversation; the mailbox keeps the whole of it (email_read).
MAX_TEXT_CHARS = 20_000
# Platforms that accept free-form messages only this long after the peer's last message.
REPLY_WINDOWS: dict[Platform, timedelta] = {
    Platform.WHATSAPP: timedelta(hours=24),
    Platform.INSTAGRAM: timedelta(hours=24),
}
# Where people write to the account: only these have conversations and inbound messages to filter by.
TWO_WAY_PLATFORMS: tuple[Platform, ...] = (
    Platform.EMAIL,
    Platform.WHATSAPP,
    Platform.TELEGRAM,
    Platform.DISCORD,
    Platform.INSTAGRAM,
)
# A status never goes back: a late "delivered" does not undo "read".
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}


def conversation_id(customer_id: str, platform: Platform, account: str, peer: str) -> str:
    digest = hashlib.sha256(f"{customer_id}\x00{platform.value}\x00{account}\x00{peer}".encode()).hexdigest()
    return f"c{digest[:23]}"


def whatsapp_peer(number: str) -> str:
    """WhatsApp ids are the number's digits: `+16505551234` and `16505551234` are one contact."""
    return number.lstrip("+")


def email_thread_root(message_id: str, in_reply_to: str | None, references: tuple[str, ...]) -> str:
    """The first Message-ID of the thread: References lists the thread from its root on."""
    if references:
        return references[0]
    return in_reply_to or message_id


@dataclass(frozen=True, slots=True)
class Participant:
    id: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Media:
    """An attachment by reference: the platform's media id (received) or the URL it was sent from."""

    kind: str
    ref: str
    caption: str | None = None
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class MessageView:
    message_id: str
    direction: str  # "in" or "out"
    sender: str
    text: str | None
    sent_at: datetime
    status: str | None = None
    media: Media | None = None
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Who the conversation is with, and where."""

    customer_id: str
    platform: Platform
    peer: str
    account: str = DEFAULT_ACCOUNT

    @property
    def id(self) -> str:
        return conversation_id(self.customer_id, self.platform, self.account, self.peer)


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation as stored: its key, what its list entry shows, and when the peer last wrote."""

    id: str
    platform: Platform
    account: str
    peer: str
    title: str
    participants: tuple[Participant, ...]
    last_message_at: datetime
    last_message_preview: str
    unread_count: int = 0
    last_inbound_at: datetime | None = None


# Not frozen: a list page makes many of these, and a frozen dataclass's __init__ (object.__setattr__ per field)
# costs about five times a plain one's. Nothing changes a view once made.
@dataclass(slots=True)
class ConversationView:
    conversation_id: str
    platform: str
    account: str
    title: str
    participants: list[Participant]
    last_message_at: datetime
    last_message_preview: str
    unread_count: int
    can_reply: bool
    reply_window_expires_at: datetime | None = None


V = TypeVar("V")


def reply_window_expires_at(platform: Platform, last_inbound_at: datetime | None) -> datetime | None:
    window = REPLY_WINDOWS.get(platform)
    if window is None or last_inbound_at is None:
        return None
    return last_inbound_at + window


def view(conversation: Conversation, now: datetime, shape: Callable[..., V] = ConversationView) -> V:  # type: ignore[assignment]
    """The conversation as a list shows it at `now`; `shape` builds it from `ConversationView`'s fields by name (an
    edge may build its own wire form directly, rather than convert each view once made)."""
    expires = reply_window_expires_at(conversation.platform, conversation.last_inbound_at)
    return shape(
        conversation_id=conversation.id,
        platform=conversation.platform.value,
        account=conversation.account,
        title=conversation.title,
        participants=list(conversation.participants),
        last_message_at=conversation.last_message_at,
        last_message_preview=conversation.last_message_preview,
        unread_count=conversation.unread_count,
        can_reply=expires is None or now < expires,
        reply_window_expires_at=expires,
    )


def kept_text(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT_CHARS:
        return text
    return text[:MAX_TEXT_CHARS] + " […]"


def preview(message: MessageView) -> str:
    if message.text:
        text = " ".join(message.text.split())
        return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
    if message.media is not None:
        return f"[{message.media.kind}]"
    return ""


@dataclass(frozen=True, slots=True)
class Recorded:
    """One message to put in a conversation, with what it tells about the conversation itself."""

    key: ConversationKey
    message: MessageView
    title: str | None = None  # None: keep the conversation's title (or use the peer's id for a new one)
    participants: tuple[Participant, ...] = field(default=())
