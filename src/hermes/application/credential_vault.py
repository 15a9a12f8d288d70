"""Credentials sealed with the cipher before they reach a store, opened only when used."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from hermes.application.ports.credentials import Cipher, CredentialStore
from hermes.domain.credentials import Credentials
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT
from hermes.domain.platform import Platform


def credential_context(customer_id: str, platform: Platform, account: str = DEFAULT_ACCOUNT) -> bytes:
    # Associated data: an envelope copied under another customer, platform or account fails to open.
    # The default account's context is the one every envelope had before accounts existed.
    base = f"hermes:creds:{customer_id}:{platform.value}"
    return (base if account == DEFAULT_ACCOUNT else f"{base}:{account}").encode()


@dataclass(slots=True)
class CredentialVault:
    cipher: Cipher
    store: CredentialStore

    def seal(
        self, customer_id: str, platform: Platform, credentials: Credentials, account: str = DEFAULT_ACCOUNT
    ) -> bytes:
        plaintext = json.dumps(credentials, separators=(",", ":"), sort_keys=True).encode()
        return self.cipher.encrypt(plaintext, credential_context(customer_id, platform, account))

    def open(
        self, customer_id: str, platform: Platform, envelope: bytes, account: str = DEFAULT_ACCOUNT
    ) -> Credentials:
        plaintext = self.cipher.decrypt(envelope, credential_context(customer_id, platform, account))
        loaded: Credentials = json.loads(plaintext)
        return loaded

    async def save(
        self, customer_id: str, platform: Platform, credentials: Credentials, account: str = DEFAULT_ACCOUNT
    ) -> None:
        await self.store.put(customer_id, platform, self.seal(customer_id, platform, credentials, account), account)

    async def load(self, customer_id: str, platform: Platform, account: str = DEFAULT_ACCOUNT) -> Credentials | None:
        envelope = await self.store.get(customer_id, platform, account)
        return None if envelope is None else self.open(customer_id, platform, envelope, account)

    async def remove(self, customer_id: str, platform: Platform, account: str = DEFAULT_ACCOUNT) -> bool:
        return await self.store.delete(customer_id, platform, account)

    async def connected(self, customer_id: str, platforms: Sequence[Platform]) -> list[Platform]:
        present = await self.store.present(customer_id, platforms)
        return [p for p, here in zip(platforms, present, strict=True) if here]

    async def accounts(self, customer_id: str) -> list[tuple[Platform, str]]:
        return await self.store.accounts(customer_id)
