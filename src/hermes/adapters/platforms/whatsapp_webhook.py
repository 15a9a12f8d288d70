"""WhatsApp Cloud API webhook batches (PLATFORMS.md section 1) decoded into inbound changes.

A batch is `{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {...}}]}]}`;
each change's `value.metadata.phone_number_id` names the business number it concerns,
`value.messages[]` carries messages (with `value.contacts[]` naming their senders) and
`value.statuses[]` the fate of messages the business sent. Decoding is lenient about
what it does not use: Meta adds fields without notice, and one odd message must not
hold up the rest of the batch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from hermes.domain.errors import Invalid
from hermes.domain.inbound import InboundChange, InboundMessage, InboxItem, MediaRef, StatusUpdate
from hermes.domain.platform import Platform

_MEDIA_KINDS = ("image", "document", "audio", "video", "sticker")
_MAX_TEXT = 65536


class _Metadata(msgspec.Struct):
    phone_number_id: str | int | None = None
    display_phone_number: str | None = None


class _Profile(msgspec.Struct):
    name: str | None = None


class _Contact(msgspec.Struct):
    wa_id: str | None = None
    profile: _Profile | None = None


class _ErrorData(msgspec.Struct):
    details: str | None = None


class _Error(msgspec.Struct):
    code: int | str | None = None
    title: str | None = None
    message: str | None = None
    error_data: _ErrorData | None = None


class _Status(msgspec.Struct):
    id: str | None = None
    status: str | None = None
    timestamp: str | int | None = None
    recipient_id: str | None = None
    errors: list[_Error] = []


class _Value(msgspec.Struct):
    metadata: _Metadata | None = None
    contacts: list[_Contact] = []
    messages: list[Any] = []
    statuses: list[_Status] = []


class _Change(msgspec.Struct):
    value: _Value | None = None
    field: str | None = None


class _Entry(msgspec.Struct):
    changes: list[_Change] = []
    id: str | None = None


class _Batch(msgspec.Struct):
    object: str | None = None
    entry: list[_Entry] = []


_decoder = msgspec.json.Decoder(_Batch)


def _time(value: object) -> datetime:
    try:
        return datetime.fromtimestamp(int(str(value)), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.fromtimestamp(0, UTC)


def _str(value: object, limit: int = 1024) -> str | None:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value)
        return text[:limit] if text else None
    return None


def _field(obj: object, *path: str) -> object:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def _text(raw: dict[str, Any], kind: str) -> str | None:
    """What the sender wrote or chose, for the kinds that carry words."""
    candidates: list[object] = {
        "text": [_field(raw, "text", "body")],
        "button": [_field(raw, "button", "text")],
        "interactive": [
            _field(raw, "interactive", "button_reply", "title"),
            _field(raw, "interactive", "list_reply", "title"),
        ],
        "reaction": [_field(raw, "reaction", "emoji")],
    }.get(kind, [])
    if kind == "location":
        lat, lon = _field(raw, "location", "latitude"), _field(raw, "location", "longitude")
        name = _str(_field(raw, "location", "name"))
        where = f"{lat},{lon}" if lat is not None and lon is not None else None
        return " ".join(p for p in (name, where) if p) or None
    for candidate in candidates:
        text = _str(candidate, _MAX_TEXT)
        if text is not None:
            return text
    return None


def _message(raw: dict[str, Any], business_id: str, names: dict[str, str]) -> InboundMessage | None:
    message_id = _str(raw.get("id"), 512)
    sender = _str(raw.get("from"), 64)
    if message_id is None or sender is None:
        return None
    kind = _str(raw.get("type"), 32) or "unknown"
    media = None
    if kind in _MEDIA_KINDS and isinstance(raw.get(kind), dict):
        body: dict[str, Any] = raw[kind]
        media_id = _str(body.get("id"), 512)
        if media_id is not None:
            media = MediaRef(
                kind=kind,
                media_id=media_id,
                mime_type=_str(body.get("mime_type"), 128),
                sha256=_str(body.get("sha256"), 128),
                caption=_str(body.get("caption"), 4096),
                filename=_str(body.get("filename"), 512),
            )
    reply_to = _str(_field(raw, "context", "id"), 512)
    if kind == "reaction":
        reply_to = _str(_field(raw, "reaction", "message_id"), 512) or reply_to
    return InboundMessage(
        platform=Platform.WHATSAPP,
        business_id=business_id,
        message_id=message_id,
        sender=sender,
        sent_at=_time(raw.get("timestamp")),
        type=kind,
        text=_text(raw, kind),
        contact_name=names.get(sender),
        media=media,
        reply_to=reply_to,
    )


def _status(raw: _Status, business_id: str) -> StatusUpdate | None:
    if not raw.id or not raw.status:
        return None
    error = raw.errors[0] if raw.errors else None
    return StatusUpdate(
        platform=Platform.WHATSAPP,
        business_id=business_id,
        message_id=raw.id[:512],
        status=raw.status[:32],
        at=_time(raw.timestamp),
        recipient=_str(raw.recipient_id, 64),
        error_code=_str(error.code, 32) if error else None,
        error_title=_str(error.title or error.message, 512) if error else None,
        error_detail=_str(error.error_data.details, 1024) if error and error.error_data else None,
    )


def decode_whatsapp(body: bytes) -> list[InboundChange]:
    try:
        batch = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise Invalid(f"not a WhatsApp webhook batch: {exc}") from None
    if batch.object not in (None, "whatsapp_business_account"):
        raise Invalid(f"not a WhatsApp webhook batch: object is {batch.object!r}")
    changes: list[InboundChange] = []
    for entry in batch.entry:
        for change in entry.changes:
            value = change.value
            if value is None or value.metadata is None or value.metadata.phone_number_id is None:
                continue
            business_id = str(value.metadata.phone_number_id)
            names = {c.wa_id: c.profile.name for c in value.contacts if c.wa_id and c.profile and c.profile.name}
            items: list[InboxItem] = []
            for raw in value.messages:
                message = _message(raw, business_id, names) if isinstance(raw, dict) else None
                if message is not None:
                    items.append(message)
            for status in value.statuses:
                update = _status(status, business_id)
                if update is not None:
                    items.append(update)
            changes.append(InboundChange(Platform.WHATSAPP, business_id, tuple(items)))
    return changes
