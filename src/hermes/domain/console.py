"""Sessions of the customer console: a browser signed in with the customer's API key.

The browser holds only a random session id (in a cookie); the server keeps the
session under the id's SHA-256 digest, so a copy of the store opens no session.
A session ends after `idle_ttl` seconds without a request, `max_age` seconds
after sign-in, at sign-out, and as soon as the key it was opened with is rotated
or the customer is deactivated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

# 32 random bytes, url-safe base64 without padding: 43 characters.
SESSION_ID_LENGTH = 43


@dataclass(frozen=True, slots=True)
class ConsolePolicy:
    idle_ttl: int = 30 * 60
    max_age: int = 12 * 3600
    sign_ins_per_minute: int = 10
    # Where the console is served (scheme://host[:port]): a form posted from anywhere else is refused.
    origin: str = "http://127.0.0.1:8000"

    @property
    def secure(self) -> bool:
        """Cookies are marked Secure (and named __Host-) when the console is served over https."""
        return self.origin.startswith("https://")


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    customer_id: str
    # The digest of the API key used to sign in: once the key is rotated it no longer finds
    # the customer, and the session ends with it.
    key_digest: str
    created_at: datetime


def public_origin(url: str) -> str:
    """`https://example.com/base/` -> `https://example.com`: what a browser sends as Origin."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def session_digest(session_id: str) -> str:
    return hashlib.sha256(b"hermes-console-session:" + session_id.encode()).hexdigest()


def csrf_token(session_id: str) -> str:
    """The token every form of the session carries: derived from the id, useless without the cookie."""
    mac = hmac.new(session_id.encode(), b"hermes-console-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
