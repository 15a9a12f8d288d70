"""How inbox entries and callback deliveries are stored (Redis values, SQL payloads): compact msgpack."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from hermes.domain.callbacks import Delivery
from hermes.domain.inbound import ConnectionEvent, InboundMessage, InboxEntry, InboxItem, MediaRef, StatusUpdate
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT
from hermes.domain.platform import Platform


class _Media(msgspec.Struct, omit_defaults=True):
    kind: str
    id: str
    mime: str | None = None
    sha: str | None = None
    caption: str | None = None
    filename: str | None = None


class _Item(msgspec.Struct, omit_defaults=True):
    # k: "m" message, "s" status or "c" connection event; short names because an inbox keeps 90 days of these.
    k: str
    p: str
    biz: str
    id: str
    at: datetime
    rx: datetime
    sender: str | None = None
    type: str | None = None
    text: str | None = None
    name: str | None = None
    media: _Media | None = None
    reply: str | None = None
    subj: str | None = None
    refs: list[str] = []
    chat: str | None = None
    status: str | None = None
    to: str | None = None
    code: str | None = None
    title: str | None = None
    detail: str | None = None
    acct: str = DEFAULT_ACCOUNT  # the customer's account on the platform (entries stored without it: the default)


_encode = msgspec.msgpack.Encoder().encode
_decode_item = msgspec.msgpack.Decoder(_Item).decode


def encode_item(item: InboxItem, received_at: datetime) -> bytes:
    if isinstance(item, ConnectionEvent):
        return _encode(_Item(k="c", p=item.platform.value, biz=item.account, id=item.event, at=item.at, rx=received_at))
    if isinstance(item, InboundMessage):
        m = item.media
        return _encode(
            _Item(
                k="m",
                p=item.platform.value,
                biz=item.business_id,
                id=item.message_id,
                at=item.sent_at,
                rx=received_at,
                sender=item.sender,
                type=item.type,
                text=item.text,
                name=item.contact_name,
                media=_Media(m.kind, m.media_id, m.mime_type, m.sha256, m.caption, m.filename) if m else None,
                reply=item.reply_to,
                subj=item.subject,
                refs=list(item.references),
                chat=item.chat_id,
                acct=item.account,
            )
        )
    return _encode(
        _Item(
            k="s",
            p=item.platform.value,
            biz=item.business_id,
            id=item.message_id,
            at=item.at,
            rx=received_at,
            status=item.status,
            to=item.recipient,
            code=item.error_code,
            title=item.error_title,
            detail=item.error_detail,
            acct=item.account,
        )
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def decode_entry(entry_id: str, raw: bytes) -> InboxEntry:
    r = _decode_item(raw)
    platform = Platform(r.p)
    item: InboxItem
    if r.k == "c":
        item = ConnectionEvent(platform=platform, account=r.biz, event=r.id, at=_utc(r.at))
    elif r.k == "m":
        media = r.media
        item = InboundMessage(
            platform=platform,
            business_id=r.biz,
            message_id=r.id,
            sender=r.sender or "",
            sent_at=_utc(r.at),
            type=r.type or "unknown",
            text=r.text,
            contact_name=r.name,
            media=MediaRef(media.kind, media.id, media.mime, media.sha, media.caption, media.filename)
            if media
            else None,
            reply_to=r.reply,
            subject=r.subj,
            references=tuple(r.refs),
            chat_id=r.chat,
            account=r.acct,
        )
    else:
        item = StatusUpdate(
            platform=platform,
            business_id=r.biz,
            message_id=r.id,
            status=r.status or "",
            at=_utc(r.at),
            recipient=r.to,
            error_code=r.code,
            error_title=r.title,
            error_detail=r.detail,
            account=r.acct,
        )
    return InboxEntry(entry_id, _utc(r.rx), item)


class _Delivery(msgspec.Struct, array_like=True):
    at: datetime
    entry_id: str
    message_id: str
    attempt: int
    outcome: str
    status: int | None
    error: str | None
    duration_ms: float


_decode_delivery = msgspec.msgpack.Decoder(_Delivery).decode


def encode_delivery(d: Delivery) -> bytes:
    return _encode(_Delivery(d.at, d.entry_id, d.message_id, d.attempt, d.outcome, d.status, d.error, d.duration_ms))


def decode_delivery(raw: bytes) -> Delivery:
    d = _decode_delivery(raw)
    return Delivery(_utc(d.at), d.entry_id, d.message_id, d.attempt, d.outcome, d.status, d.error, d.duration_ms)
