"""Webhook authentication as the platforms do it: Meta's signed bodies, Telegram's secret header."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import msgspec

from hermes.application.ports.webhooks import Headers, WebhookAuth, Webhooks
from hermes.domain.platform import Platform

_SIGNATURE_PREFIX = b"sha256="
log = logging.getLogger("hermes.webhook")

RouteSecret = Callable[[str], Awaitable[str | None]]
"""The secret Hermes generated for an account (by account id), None when no customer routes it."""


@dataclass(frozen=True, slots=True)
class WebhookKeys:
    """What the deployment configured for one platform's webhook (HERMES_{PLATFORM}_APP_SECRET, ...)."""

    app_secrets: Sequence[bytes] = ()
    verify_token: str | None = None
    route_secret: RouteSecret | None = None
    setting: str = "the app secret"  # its name, for the warning when it is missing


WebhookFactory = Callable[[WebhookKeys], WebhookAuth]


def parse_app_secrets(value: str | None) -> list[bytes]:
    """One secret, or several separated by commas while rotating."""
    return [s.strip().encode() for s in (value or "").split(",") if s.strip()]


def signature_matches(body: bytes, header: bytes | None, app_secrets: Sequence[bytes]) -> bool:
    """`X-Hub-Signature-256: sha256=<hex>` against every configured secret, each compared in constant time."""
    if not header or header[:7].lower() != _SIGNATURE_PREFIX:
        return False
    given = header[7:].strip().lower()
    matched = False
    for secret in app_secrets:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        matched |= hmac.compare_digest(expected, given)
    return matched


def _header(headers: Headers, name: bytes) -> bytes | None:
    return next((v for k, v in headers if k == name), None)


@dataclass(frozen=True, slots=True)
class MetaSignedWebhook:
    """Meta (WhatsApp, Instagram): `hub.*` GET handshake, `X-Hub-Signature-256` over the raw body."""

    keys: WebhookKeys
    account_in_path: bool = False
    ack: bytes = b"EVENT_RECEIVED"

    def handshake(self, query: Mapping[str, str]) -> bytes | None:
        expected = self.keys.verify_token
        token = query.get("hub.verify_token", "").encode()
        challenge = query.get("hub.challenge", "")
        if (
            not expected
            or query.get("hub.mode") != "subscribe"
            or not hmac.compare_digest(token, expected.encode())
            or not challenge
            or len(challenge) > 512
        ):
            return None
        return challenge.encode()

    async def authenticate(self, headers: Headers, body: bytes, account: str | None) -> bool:
        return signature_matches(body, _header(headers, b"x-hub-signature-256"), self.keys.app_secrets)

    def envelope(self, body: bytes, account: str | None) -> bytes:
        return body


_encode = msgspec.json.encode


@dataclass(frozen=True, slots=True)
class SecretHeaderWebhook:
    """Telegram: the `secret_token` Hermes gave `setWebhook` comes back in a header, per account."""

    keys: WebhookKeys
    header: bytes = b"x-telegram-bot-api-secret-token"
    account_in_path: bool = True
    ack: bytes = b"OK"

    def handshake(self, query: Mapping[str, str]) -> bytes | None:
        return None

    async def authenticate(self, headers: Headers, body: bytes, account: str | None) -> bool:
        given = _header(headers, self.header)
        if not given or account is None or self.keys.route_secret is None:
            return False
        expected = await self.keys.route_secret(account)
        # Compared in constant time whether or not the account is routed, so timing names no account.
        return hmac.compare_digest(given, (expected or "\0" * 64).encode()) and expected is not None

    def envelope(self, body: bytes, account: str | None) -> bytes:
        # The path names the account, the body does not: both are kept for routing.
        return _encode({"account": account, "update": msgspec.Raw(body)})


def meta_signed(keys: WebhookKeys) -> WebhookAuth:
    if not keys.app_secrets:
        log.warning("%s is not set: every webhook POST it signs will be refused", keys.setting)
    return MetaSignedWebhook(keys)


def secret_header(keys: WebhookKeys) -> WebhookAuth:
    return SecretHeaderWebhook(keys)


class WebhookTable(dict[Platform, WebhookAuth], Webhooks):
    def webhook(self, platform: Platform) -> WebhookAuth | None:
        return self.get(platform)
