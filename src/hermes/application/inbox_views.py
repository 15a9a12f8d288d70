"""Inbox entries as plain JSON values: snake_case for tools (MCP and REST tool calls), camelCase for callbacks."""

from __future__ import annotations

import functools
import re
from typing import Any

from hermes.domain.inbound import ConnectionEvent, InboundMessage, InboxEntry, MediaRef, StatusUpdate

_CAMEL = re.compile(r"_([a-z])")


def _iso(value: Any) -> str:
    text: str = value.isoformat()
    return text.replace("+00:00", "Z")


def _media(media: MediaRef) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": media.kind, "media_id": media.media_id}
    for name in ("mime_type", "sha256", "caption", "filename"):
        value = getattr(media, name)
        if value is not None:
            out[name] = value
    return out


def _message(m: InboundMessage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": m.message_id,
        "from": m.sender,
        "to": m.business_id,
        "type": m.type,
        "timestamp": _iso(m.sent_at),
    }
    if m.contact_name is not None:
        out["contact_name"] = m.contact_name
    if m.text is not None:
        out["text"] = m.text
    if m.media is not None:
        out["media"] = _media(m.media)
    if m.reply_to is not None:
        out["reply_to"] = m.reply_to
    if m.subject is not None:
        out["subject"] = m.subject
    if m.references:
        out["references"] = list(m.references)
    if m.chat_id is not None:
        out["chat_id"] = m.chat_id
    return out


def _status(s: StatusUpdate) -> dict[str, Any]:
    out: dict[str, Any] = {
        "message_id": s.message_id,
        "status": s.status,
        "business_id": s.business_id,
        "timestamp": _iso(s.at),
    }
    for name in ("recipient", "error_code", "error_title", "error_detail"):
        value = getattr(s, name)
        if value is not None:
            out[name] = value
    return out


def connection_event(e: ConnectionEvent) -> dict[str, Any]:
    """The event as the customer's callback receives it."""
    return {"type": e.event, "platform": e.platform.value, "account": e.account, "timestamp": _iso(e.at)}


def entry_view(entry: InboxEntry) -> dict[str, Any]:
    """snake_case, the tools' convention."""
    out: dict[str, Any] = {
        "id": entry.id,
        "kind": entry.kind,
        "platform": entry.platform.value,
        "account": entry.account,
        "received_at": _iso(entry.received_at),
    }
    if isinstance(entry.item, InboundMessage):
        out["message"] = _message(entry.item)
    elif isinstance(entry.item, ConnectionEvent):
        out["connection"] = connection_event(entry.item)
    else:
        out["status"] = _status(entry.item)
    return out


@functools.cache
def _camel_key(key: str) -> str:
    # Keys come from the projections above (a few dozen names), so the cache stays small.
    return _CAMEL.sub(lambda m: m.group(1).upper(), key)


def camel(value: Any) -> Any:
    """The same values with camelCase keys, the HTTP API's convention."""
    if isinstance(value, dict):
        return {_camel_key(k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value
