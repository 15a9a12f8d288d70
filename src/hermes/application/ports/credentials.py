"""Encrypted platform credentials and the cipher that protects them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from hermes.domain.managed_oauth import DEFAULT_ACCOUNT
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


@dataclass(frozen=True, slots=True)
class AccountsPage:
    """One bounded step through every stored account."""

    accounts: list[tuple[str, Platform, str]]  # (customer, platform, account)
    next: str | None  # where the next step starts; None once every account was passed


class CredentialStore(Protocol):
    """Opaque envelopes keyed by customer, platform and account.

    The default account lives at `creds:{cust}:{platform}`, any other at
    `creds:{cust}:{platform}:{account}`.
    """

    async def put(
        self, customer_id: str, platform: Platform, envelope: bytes, account: str = DEFAULT_ACCOUNT
    ) -> None: ...

    async def get(self, customer_id: str, platform: Platform, account: str = DEFAULT_ACCOUNT) -> bytes | None: ...

    async def delete(self, customer_id: str, platform: Platform, account: str = DEFAULT_ACCOUNT) -> bool: ...

    async def present(self, customer_id: str, platforms: Sequence[Platform]) -> list[bool]:
        """Which of `platforms` hold credentials for their default account, in one round trip."""
        ...

    async def accounts(self, customer_id: str) -> list[tuple[Platform, str]]:
        """Every (platform, account) the customer has stored credentials for, sorted."""
        ...

    async def replace_if_unchanged(
        self, customer_id: str, platform: Platform, old: bytes, new: bytes, account: str = DEFAULT_ACCOUNT
    ) -> bool:
        """Swap `old` for `new` unless it changed meanwhile (key rotation must not undo a connect)."""
        ...

    def scan(self) -> AsyncIterator[tuple[str, Platform, str, bytes]]:
        """Every stored envelope as (customer, platform, account, envelope); used by key rotation."""
        ...

    async def page(self, position: str, size: int) -> AccountsPage:
        """The accounts after `position` ("" to start), reading about `size` entries and no envelope.

        A position stays valid across processes and restarts, so a walk through a large
        store can be taken up where another process left it; an account present during
        the whole walk is listed at least once (an account may come twice).
        """
        ...
