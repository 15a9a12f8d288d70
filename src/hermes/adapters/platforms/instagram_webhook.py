"""Instagram messaging webhooks (Meta's Instagram API, `object: "instagram"`) decoded into inbound changes.

A batch is `{"object": "instagram", "entry": [{"id": <IG user id>, "time": ..., "messaging": [...]}]}`;
each `entry.id` names the professional account that received the events, and each
`messaging[]` item carries `sender.id` (the person's Instagram-scoped id), `recipient.id`,
`timestamp` (ms) and a `message` (`mid`, `text`, `attachments[]`, `reply_to.mid`).
Echoes (`message.is_echo`: what the account itself sent), reads, reactions and other event
kinds are not inbound messages and are skipped. Lenient like the WhatsApp decoder: one odd
item must not hold up the rest of the batch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from hermes.domain.errors import Invalid
from hermes.domain.inbound import InboundChange, InboundMessage, InboxItem, MediaRef
from hermes.domain.platform import Platform

_MAX_TEXT = 65536


class _Entry(msgspec.Struct):
    id: str | int | None = None
    messaging: list[Any] = []


class _Batch(msgspec.Struct):
    object: str | None = None
    entry: list[_Entry] = []


_decoder = msgspec.json.Decoder(_Batch)


def _str(value: object, limit: int = 1024) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value)
        return text[:limit] if text else None
    return None


def _get(obj: object, *path: str) -> object:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def _time(ms: object) -> datetime:
    try:
        return datetime.fromtimestamp(int(str(ms)) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.fromtimestamp(0, UTC)


def _message(raw: dict[str, Any], account: str) -> InboundMessage | None:
    message = raw.get("message")
    if not isinstance(message, dict) or message.get("is_echo") is True:
        return None
    mid = _str(message.get("mid"), 512)
    sender = _str(_get(raw, "sender", "id"), 64)
    if mid is None or sender is None:
        return None
    media = None
    kind = "text"
    attachments = message.get("attachments")
    if isinstance(attachments, list) and attachments and isinstance(attachments[0], dict):
        first = attachments[0]
        kind = _str(first.get("type"), 32) or "unknown"
        url = _str(_get(first, "payload", "url"), 512)
        if url is not None:
            media = MediaRef(kind=kind, media_id=url)
    return InboundMessage(
        platform=Platform.INSTAGRAM,
        business_id=account,
        message_id=mid,
        sender=sender,
        sent_at=_time(raw.get("timestamp")),
        type=kind,
        text=_str(message.get("text"), _MAX_TEXT),
        media=media,
        reply_to=_str(_get(message, "reply_to", "mid"), 512),
    )


def decode_instagram(body: bytes) -> list[InboundChange]:
    try:
        batch = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise Invalid(f"not an Instagram webhook batch: {exc}") from None
    if batch.object != "instagram":
        raise Invalid(f"not an Instagram webhook batch: object is {batch.object!r}")
    changes: list[InboundChange] = []
    for entry in batch.entry:
        account = _str(entry.id, 64)
        if account is None:
            continue
        items: list[InboxItem] = []
        for raw in entry.messaging:
            message = _message(raw, account) if isinstance(raw, dict) else None
            if message is not None:
                items.append(message)
        changes.append(InboundChange(Platform.INSTAGRAM, account, tuple(items)))
    return changes
