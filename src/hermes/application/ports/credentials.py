"""Encrypted platform credentials and the cipher that protects them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from hermes.domain.platform import Platform


class Cipher(Protocol):
    """Authenticated encryption; `context` is bound to the ciphertext (associated data)."""

    def encrypt(self, plaintext: bytes, context: bytes) -> bytes: ...

    def decrypt(self, envelope: bytes, context: bytes) -> bytes:
        """Plaintext, or `ValueError` when the envelope was altered or bound to another context."""
        ...

    def is_current(self, envelope: bytes) -> bool:
        """Whether the envelope is already sealed with the key that encrypts now."""
        ...


class CredentialStore(Protocol):
    """Opaque envelopes keyed by customer and platform (`creds:{cust}:{platform}`)."""

    async def put(self, customer_id: str, platform: Platform, envelope: bytes) -> None: ...

    async def get(self, customer_id: str, platform: Platform) -> bytes | None: ...

    async def delete(self, customer_id: str, platform: Platform) -> bool: ...

    async def present(self, customer_id: str, platforms: Sequence[Platform]) -> list[bool]:
        """Which of `platforms` hold credentials, in one round trip."""
        ...

    async def replace_if_unchanged(self, customer_id: str, platform: Platform, old: bytes, new: bytes) -> bool:
        """Swap `old` for `new` unless it changed meanwhile (key rotation must not undo a connect)."""
        ...

    def scan(self) -> AsyncIterator[tuple[str, Platform, bytes]]:
        """Every stored envelope; used by key rotation."""
        ...
