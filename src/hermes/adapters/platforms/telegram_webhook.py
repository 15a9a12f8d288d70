"""Telegram `Update` objects as the webhook delivers them, decoded into inbound changes.

The webhook path names the bot (`/webhook/telegram/{botId}`), the body does not, so the queue
keeps both: `{"account": "<bot id>", "update": <Update>}` (see `SecretHeaderWebhook.envelope`).
Messages, edited messages, channel posts and business messages are inbound messages; other
update kinds (callback queries, member changes, polls) are skipped. Telegram numbers messages
per chat, so each message carries its chat id and is deduplicated within its chat.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from hermes.domain.errors import Invalid
from hermes.domain.inbound import InboundChange, InboundMessage, InboxItem, MediaRef
from hermes.domain.platform import Platform

_MAX_TEXT = 65536


# Telegram's Message, as the webhook delivers it and as telegram_get_updates and sendMessage answer it.
class Chat(msgspec.Struct):
    id: int | str
    type: str = ""
    title: str | None = None
    username: str | None = None


class User(msgspec.Struct):
    id: int | str
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None


class ReplyTo(msgspec.Struct):
    message_id: int


class Message(msgspec.Struct):
    message_id: int
    chat: Chat
    date: int = 0
    text: str | None = None
    caption: str | None = None
    from_: User | None = msgspec.field(default=None, name="from")
    reply_to_message: ReplyTo | None = None
    photo: list[dict[str, Any]] | None = None
    document: dict[str, Any] | None = None
    voice: dict[str, Any] | None = None
    video: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    sticker: dict[str, Any] | None = None


class _Update(msgspec.Struct):
    update_id: int = 0
    message: Message | None = None
    edited_message: Message | None = None
    channel_post: Message | None = None
    business_message: Message | None = None


class _Envelope(msgspec.Struct):
    account: str
    update: _Update


_decoder = msgspec.json.Decoder(_Envelope)
_MEDIA = ("document", "voice", "video", "audio", "sticker")


def _media(message: Message) -> MediaRef | None:
    if message.photo:
        largest = message.photo[-1]  # Telegram lists the sizes smallest first
        file_id = largest.get("file_id")
        return MediaRef("image", str(file_id)[:512], caption=message.caption) if file_id else None
    for kind in _MEDIA:
        body = getattr(message, kind)
        if isinstance(body, dict) and body.get("file_id"):
            mime = body.get("mime_type")
            name = body.get("file_name")
            return MediaRef(
                kind,
                str(body["file_id"])[:512],
                mime_type=str(mime)[:128] if mime else None,
                caption=message.caption,
                filename=str(name)[:512] if name else None,
            )
    return None


def _name(user: User | None) -> str | None:
    if user is None:
        return None
    name = " ".join(p for p in (user.first_name, user.last_name) if p) or user.username
    return name[:256] if name else None


def _inbound(message: Message, bot: str) -> InboundMessage:
    media = _media(message)
    sender = message.from_.id if message.from_ is not None else message.chat.id
    text = message.text or message.caption
    return InboundMessage(
        platform=Platform.TELEGRAM,
        business_id=bot,
        message_id=str(message.message_id),
        sender=str(sender)[:64],
        sent_at=datetime.fromtimestamp(message.date, UTC),
        type=media.kind if media else "text",
        text=text[:_MAX_TEXT] if text else None,
        contact_name=_name(message.from_),
        media=media,
        reply_to=str(message.reply_to_message.message_id) if message.reply_to_message else None,
        chat_id=str(message.chat.id)[:64],
    )


def decode_telegram(body: bytes) -> list[InboundChange]:
    try:
        envelope = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise Invalid(f"not a Telegram update: {exc}") from None
    update = envelope.update
    items: list[InboxItem] = []
    for message in (update.message, update.edited_message, update.channel_post, update.business_message):
        if message is not None:
            items.append(_inbound(message, envelope.account))
    return [InboundChange(Platform.TELEGRAM, envelope.account, tuple(items))]
