"""WhatsApp Cloud API webhook batches as Meta sends them (PLATFORMS.md section 1; pywa's
tests/data/updates/{message,message_status}.json), and Meta's signature over them."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

WABA_ID = "102290129340398"
APP_SECRET = "app-secret"  # HERMES_WHATSAPP_APP_SECRET of the test settings


def wamid() -> str:
    return "wamid.HBgL" + secrets.token_hex(16).upper()


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(batch: dict[str, Any]) -> bytes:
    return json.dumps(batch, separators=(",", ":")).encode()


def change(
    phone_number_id: str,
    *,
    messages: list[Any] | None = None,
    statuses: list[Any] | None = None,
    contacts: list[Any] | None = None,
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
    }
    if contacts is not None:
        value["contacts"] = contacts
    if messages is not None:
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return {"field": "messages", "value": value}


def batch(*changes: dict[str, Any], entries: int = 1) -> dict[str, Any]:
    """One entry holding every change, or one entry per change when `entries` > 1."""
    if entries == 1:
        return {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": list(changes)}]}
    return {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [c]} for c in changes]}


def contact(wa_id: str = "16505551234", name: str = "Sheena") -> dict[str, Any]:
    return {"profile": {"name": name}, "wa_id": wa_id, "user_id": "US.13491208655302741918"}


def text_message(message_id: str, body: str = "hi", sender: str = "16505551234") -> dict[str, Any]:
    return {"from": sender, "id": message_id, "timestamp": "1749416383", "type": "text", "text": {"body": body}}


def image_message(message_id: str, sender: str = "16505551234") -> dict[str, Any]:
    return {
        "from": sender,
        "id": message_id,
        "timestamp": "1749416390",
        "type": "image",
        "image": {
            "caption": "the invoice",
            "mime_type": "image/jpeg",
            "sha256": "HgfUvhVNGqUhcBEsPf1KS6bBmQ4mnPjo/rGX9g0Rzzk=",
            "id": "1203417644567187",
        },
    }


def reply_message(
    message_id: str, replying_to: str, body: str = "yes please", sender: str = "16505551234"
) -> dict[str, Any]:
    message = text_message(message_id, body, sender)
    message["context"] = {"from": "15550783881", "id": replying_to}
    return message


def status(message_id: str, state: str, recipient: str = "16505551234") -> dict[str, Any]:
    update: dict[str, Any] = {
        "id": message_id,
        "status": state,
        "timestamp": "1698266945",
        "recipient_id": recipient,
    }
    if state != "failed":
        update["conversation"] = {
            "id": "0ef3a4b3f1a2d3b9c8e7f6a5b4c3d2e1",
            "expiration_timestamp": "1698353345",
            "origin": {"type": "service"},
        }
        update["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "service"}
    else:
        update["errors"] = [
            {
                "code": 131047,
                "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": {"details": "Message failed to send because more than 24 hours have passed"},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }
        ]
    return update
