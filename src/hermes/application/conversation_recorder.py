"""Puts every message Hermes receives or sends into its conversation."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hermes.application.ports.clock import Clock
from hermes.application.ports.conversations import ConversationStore
from hermes.domain.conversations import (
    DEFAULT_ACCOUNT,
    IN,
    OUT,
    ConversationKey,
    Media,
    MessageView,
    Participant,
    Recorded,
    email_thread_root,
    kept_text,
    whatsapp_peer,
)
from hermes.domain.inbound import InboundMessage, InboxItem, StatusUpdate
from hermes.domain.platform import Platform

# Set by conversation_reply while its send runs: the send belongs to that conversation, whatever its recipient.
replying_in: contextvars.ContextVar[ConversationKey | None] = contextvars.ContextVar("replying_in", default=None)


@dataclass(frozen=True, slots=True)
class SendShape:
    """Where a send tool keeps its recipient and text, in its parsed arguments and its result."""

    platform: Platform
    peer: Callable[[Any, Mapping[str, Any]], str]
    text: Callable[[Any], str | None]
    media: Callable[[Any], Media | None] = lambda parsed: None
    free_form: bool = True  # WhatsApp's window applies (templates are always allowed)


def _first_address(value: Any) -> str:
    first = value[0] if isinstance(value, list) else str(value).split(",")[0]
    address = str(first).strip()
    if "<" in address and address.endswith(">"):
        address = address.rsplit("<", 1)[1][:-1]
    return address.strip().lower()


def _wa_media(parsed: Any) -> Media:
    return Media(parsed.kind, parsed.url, parsed.caption, parsed.filename)


# The tools that send to one peer. Public posts (X, LinkedIn, Instagram publishing) have no peer
# to converse with and stay out of conversations.
SENDS: dict[str, SendShape] = {
    "whatsapp_send_message": SendShape(Platform.WHATSAPP, lambda p, r: whatsapp_peer(p.to), lambda p: p.message),
    "whatsapp_send_template": SendShape(
        Platform.WHATSAPP,
        lambda p, r: whatsapp_peer(p.to),
        lambda p: f"[template {p.template}]",
        free_form=False,
    ),
    "whatsapp_send_media": SendShape(
        Platform.WHATSAPP, lambda p, r: whatsapp_peer(p.to), lambda p: p.caption, _wa_media
    ),
    "telegram_send_message": SendShape(
        Platform.TELEGRAM, lambda p, r: str(r.get("chat_id") or p.chat_id), lambda p: p.text
    ),
    "discord_send_message": SendShape(Platform.DISCORD, lambda p, r: str(p.channel_id), lambda p: p.content),
    # An email starts its own thread, rooted at its Message-ID (a reply in a thread goes through conversation_reply).
    "email_send": SendShape(Platform.EMAIL, lambda p, r: str(r.get("message_id") or ""), lambda p: p.body),
}


@dataclass(slots=True)
class ConversationRecorder:
    """Records inbound messages (from routing and the mail poller), status updates, and successful sends."""

    store: ConversationStore
    clock: Clock

    async def inbound(self, customer_id: str, items: Sequence[InboxItem]) -> None:
        """Routed webhook items: messages join their conversation, status updates raise a sent message's status.
        Recording is idempotent by message id, so a batch routed twice records once."""
        records: list[Recorded] = []
        for platform, business_id in {(i.platform, i.business_id) for i in items}:
            await self.store.note_receiving(customer_id, platform, business_id, self.clock.now())
        for item in items:
            if isinstance(item, InboundMessage):
                records.append(_inbound_record(customer_id, item))
            elif isinstance(item, StatusUpdate) and item.recipient:
                await self.store.set_status(
                    customer_id,
                    item.platform,
                    item.account,
                    _peer(item.platform, item.recipient),
                    item.message_id,
                    item.status,
                )
        if records:
            await self.store.record(customer_id, records, self.clock.now())

    async def email_received(
        self,
        customer_id: str,
        *,
        message_id: str,
        in_reply_to: str | None,
        references: Sequence[str],
        sender: str,
        sender_name: str | None,
        subject: str | None,
        text: str | None,
        sent_at: datetime,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        """An email that arrived in a polled mailbox; it joins the thread its References/In-Reply-To name."""
        root = email_thread_root(message_id, in_reply_to, tuple(references))
        key = ConversationKey(customer_id, Platform.EMAIL, root, account)
        message = MessageView(message_id, IN, sender, kept_text(text), sent_at, reply_to=in_reply_to)
        record = Recorded(key, message, title=subject or None, participants=(Participant(sender.lower(), sender_name),))
        await self.store.record(customer_id, [record], self.clock.now())

    async def sent(
        self, customer_id: str, tool: str, parsed: Any, result: Mapping[str, Any], account: str = DEFAULT_ACCOUNT
    ) -> None:
        shape = SENDS.get(tool)
        message_id = result.get("message_id")
        if shape is None or message_id is None:
            return
        key = replying_in.get()
        peer = shape.peer(parsed, result)
        if key is None:
            if not peer:
                return
            key = ConversationKey(customer_id, shape.platform, peer, account)
        title: str | None = None
        participants: tuple[Participant, ...] = ()
        if shape.platform is Platform.EMAIL and replying_in.get() is None:
            title = getattr(parsed, "subject", None) or None
            participants = (Participant(_first_address(parsed.to)),)
        message = MessageView(
            message_id=str(message_id),
            direction=OUT,
            sender="me",
            text=kept_text(shape.text(parsed)),
            sent_at=self.clock.now(),
            status="sent",
            media=shape.media(parsed),
            reply_to=_reply_to(parsed),
        )
        await self.store.record(customer_id, [Recorded(key, message, title, participants)], self.clock.now())


def _reply_to(parsed: Any) -> str | None:
    value = getattr(parsed, "reply_to", None)
    return None if value is None else str(value)


def _peer(platform: Platform, raw: str) -> str:
    return whatsapp_peer(raw) if platform is Platform.WHATSAPP else raw


def _inbound_record(customer_id: str, m: InboundMessage) -> Recorded:
    sender = _peer(m.platform, m.sender)
    # A message in a group belongs to the group's conversation (where a reply goes), not its sender's.
    peer = m.chat_id or sender
    key = ConversationKey(customer_id, m.platform, peer, m.account)
    media = Media(m.media.kind, m.media.media_id, m.media.caption, m.media.filename) if m.media else None
    message = MessageView(m.message_id, IN, m.sender, kept_text(m.text), m.sent_at, media=media, reply_to=m.reply_to)
    title = m.contact_name if peer == sender else None  # a group is not named after whoever wrote last
    return Recorded(key, message, title=title, participants=(Participant(sender, m.contact_name),))
