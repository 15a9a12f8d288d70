"""A customer's inbound callback: the https URL that receives each inbound message as a signed POST."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from hermes.domain.errors import Invalid

SIGNATURE_HEADER = "X-Hermes-Signature"
TIMESTAMP_HEADER = "X-Hermes-Timestamp"
DELIVERY_HEADER = "X-Hermes-Delivery"
EVENT_HEADER = "X-Hermes-Event"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a recognisable prefix, not a secret
_MAX_URL = 2048


@dataclass(frozen=True, slots=True)
class Callback:
    """A registered callback and where its deliveries stand.

    `cursor` is the last inbox entry handled (delivered, skipped or given up);
    `registration` changes on every PUT, so a delivery pass that started under an
    older registration cannot overwrite the new one's state.
    """

    customer_id: str
    url: str
    secret_envelope: bytes
    registration: str
    created_at: datetime
    cursor: str | None = None
    failures: int = 0
    next_attempt_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to deliver one message to a callback."""

    at: datetime
    entry_id: str
    message_id: str
    attempt: int
    outcome: str  # "delivered" | "failed" | "gave_up"
    status: int | None = None
    error: str | None = None
    duration_ms: float = 0.0


def parse_callback_url(value: object) -> str:
    """An absolute https URL without credentials; where it points is checked separately (SSRF guard)."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid("url is required", {"url": "is required"})
    text = value.strip()
    if len(text) > _MAX_URL or any(ord(c) < 33 for c in text):
        raise Invalid("url is not a valid URL", {"url": f"must be a URL of at most {_MAX_URL} characters"})
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise Invalid("url is not a valid URL", {"url": "must be a valid URL"}) from None
    if parts.scheme.lower() != "https":
        raise Invalid("the callback url must use https", {"url": "must start with https://"})
    if not parts.hostname:
        raise Invalid("the callback url has no host", {"url": "must name a host"})
    if parts.username or parts.password:
        raise Invalid("the callback url must not contain credentials", {"url": "must not contain a user or password"})
    if parts.fragment:
        raise Invalid("the callback url must not have a fragment", {"url": "must not contain #"})
    if port == 0:
        raise Invalid("the callback url has an invalid port", {"url": "must have a valid port"})
    return text


def new_signing_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>` over `"{timestamp}.{body}"`: the timestamp is signed too, so a replay can be refused."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()
