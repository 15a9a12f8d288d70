"""How `/webhook/{platform}` authenticates what arrives, per platform (built from its declaration)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from hermes.domain.platform import Platform

Headers = Sequence[tuple[bytes, bytes]]


class WebhookAuth(Protocol):
    @property
    def account_in_path(self) -> bool:
        """Whether the URL names the account (`/webhook/telegram/{botId}`) rather than the body."""
        ...

    @property
    def ack(self) -> bytes:
        """The body of the 200 that tells the platform the event is stored."""
        ...

    def handshake(self, query: Mapping[str, str]) -> bytes | None:
        """The answer to the platform's GET verification, or None to refuse it (403)."""
        ...

    async def authenticate(self, headers: Headers, body: bytes, account: str | None) -> bool:
        """Whether the raw body really comes from the platform (checked before anything parses it)."""
        ...

    def envelope(self, body: bytes, account: str | None) -> bytes:
        """What the durable queue keeps: the body, with the account from the path when there is one."""
        ...


class Webhooks(Protocol):
    def webhook(self, platform: Platform) -> WebhookAuth | None: ...
