"""How conversation messages and heads are stored (Redis values, SQL payloads)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from hermes.domain.conversations import Media, MessageView, Participant


class _Media(msgspec.Struct, omit_defaults=True, array_like=True):
    kind: str
    ref: str
    caption: str | None = None
    filename: str | None = None


class _Message(msgspec.Struct, omit_defaults=True):
    # Short names: a customer keeps up to 90 days of these.
    d: str
    s: str
    at: int  # ms since the epoch
    t: str | None = None
    m: _Media | None = None
    r: str | None = None


class _Participant(msgspec.Struct, array_like=True, omit_defaults=True):
    id: str
    name: str | None = None


_encode = msgspec.msgpack.Encoder().encode
_decode_message = msgspec.msgpack.Decoder(_Message).decode
_decode_participants = msgspec.msgpack.Decoder(list[_Participant]).decode


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def from_ms(value: int | float | str | bytes) -> datetime:
    return datetime.fromtimestamp(int(float(value)) / 1000, UTC)


def encode_message(message: MessageView) -> bytes:
    media = message.media
    return _encode(
        _Message(
            d=message.direction,
            s=message.sender,
            at=ms(message.sent_at),
            t=message.text,
            m=_Media(media.kind, media.ref, media.caption, media.filename) if media else None,
            r=message.reply_to,
        )
    )


def decode_message(message_id: str, raw: bytes, status: str | None) -> MessageView:
    m = _decode_message(raw)
    return MessageView(
        message_id=message_id,
        direction=m.d,
        sender=m.s,
        text=m.t,
        sent_at=from_ms(m.at),
        status=status,
        media=Media(m.m.kind, m.m.ref, m.m.caption, m.m.filename) if m.m else None,
        reply_to=m.r,
    )


def encode_participants(participants: tuple[Participant, ...]) -> bytes:
    return _encode([_Participant(p.id, p.name) for p in participants])


def decode_participants(raw: bytes) -> tuple[Participant, ...]:
    return tuple(Participant(p.id, p.name) for p in _decode_participants(raw))
