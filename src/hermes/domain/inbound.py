"""What arrives on a customer's accounts: messages and delivery status updates.

A platform webhook batch is decoded into `InboundChange`s, one per business number
it concerns, so that a batch holding several customers' numbers can be split.
Routed items land in the customer's inbox as `InboxEntry`s, oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from hermes.domain.managed_oauth import DEFAULT_ACCOUNT
from hermes.domain.platform import Platform

# Meta retries an unacknowledged webhook for up to 7 days: a duplicate is recognised for at least that long.
DEDUPE_WINDOW_SECONDS = 8 * 24 * 3600
INBOX_RETENTION_SECONDS = 90 * 24 * 3600
STATUSES = ("sent", "delivered", "read", "failed")


def _account_part(account: str) -> str:
    # The default account's keys keep the spelling they had before accounts had names.
    return "" if account == DEFAULT_ACCOUNT else f"@{account}:"


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A media attachment by reference: the platform's media id, never the bytes."""

    kind: str  # image, document, audio, video, sticker
    media_id: str
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message someone sent to the customer's business number."""

    platform: Platform
    business_id: str  # the number (WhatsApp phone_number_id) it was sent to
    message_id: str
    sender: str
    sent_at: datetime
    type: str
    text: str | None = None
    contact_name: str | None = None
    media: MediaRef | None = None
    reply_to: str | None = None  # the message it answers (WhatsApp context.id, email In-Reply-To)
    subject: str | None = None  # email only
    references: tuple[str, ...] = ()  # email only: the thread's Message-IDs, oldest first
    chat_id: str | None = None  # where to answer, when not the sender itself (a Telegram group)
    account: str = DEFAULT_ACCOUNT  # which of the customer's accounts on the platform received it

    @property
    def dedupe_key(self) -> str:
        # Telegram numbers messages per chat, and a person's chat with each of two bots has the same id:
        # the chat and the account are part of what makes one unique.
        chat = f"{self.chat_id}:" if self.chat_id is not None else ""
        return f"{self.platform.value}:msg:{_account_part(self.account)}{chat}{self.message_id}"


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """What became of a message the customer sent: sent, delivered, read or failed (with the platform's code)."""

    platform: Platform
    business_id: str
    message_id: str
    status: str
    at: datetime
    recipient: str | None = None
    error_code: str | None = None
    error_title: str | None = None
    error_detail: str | None = None
    account: str = DEFAULT_ACCOUNT  # which of the customer's accounts sent the message

    @property
    def dedupe_key(self) -> str:
        # The same message goes through several statuses; each (id, status) pair counts once.
        return f"{self.platform.value}:status:{_account_part(self.account)}{self.message_id}:{self.status}"


NEEDS_REAUTH_EVENT = "connection.needs_reauth"


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """Something happened to one of the customer's connected accounts (e.g. it needs the owner to reconnect)."""

    platform: Platform
    account: str
    event: str
    at: datetime

    @property
    def business_id(self) -> str:
        return self.account

    @property
    def message_id(self) -> str:
        return f"{self.event}:{self.account}:{int(self.at.timestamp() * 1000)}"

    @property
    def dedupe_key(self) -> str:
        return f"{self.platform.value}:connection:{self.message_id}"


InboxItem = InboundMessage | StatusUpdate | ConnectionEvent


@dataclass(frozen=True, slots=True)
class InboundChange:
    """The part of a webhook batch that concerns one business number.

    A polled event (email) names its customer as `business_id` and the account it was read from as `account`;
    a webhook's part names only the platform's account id, which the routes turn into customer and account.
    """

    platform: Platform
    business_id: str
    items: tuple[InboxItem, ...] = field(default=())
    account: str = DEFAULT_ACCOUNT


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """One item in a customer's inbox; `id` orders the inbox and is the cursor to read past it."""

    id: str
    received_at: datetime
    item: InboxItem

    @property
    def platform(self) -> Platform:
        return self.item.platform

    @property
    def account(self) -> str:
        """Which of the customer's accounts on the platform the item concerns."""
        return self.item.account

    @property
    def kind(self) -> str:
        if isinstance(self.item, ConnectionEvent):
            return "connection"
        return "message" if isinstance(self.item, InboundMessage) else "status"
