"""Credentials sealed with the cipher before they reach a store, opened only when used."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from hermes.application.ports.credentials import Cipher, CredentialStore
from hermes.domain.credentials import Credentials
from hermes.domain.platform import Platform


def credential_context(customer_id: str, platform: Platform) -> bytes:
    # Associated data: an envelope copied under another customer or platform fails to open.
    return f"hermes:creds:{customer_id}:{platform.value}".encode()


@dataclass(slots=True)
class CredentialVault:
    cipher: Cipher
    store: CredentialStore

    def seal(self, customer_id: str, platform: Platform, credentials: Credentials) -> bytes:
        plaintext = json.dumps(credentials, separators=(",", ":"), sort_keys=True).encode()
        return self.cipher.encrypt(plaintext, credential_context(customer_id, platform))

    def open(self, customer_id: str, platform: Platform, envelope: bytes) -> Credentials:
        plaintext = self.cipher.decrypt(envelope, credential_context(customer_id, platform))
        loaded: Credentials = json.loads(plaintext)
        return loaded

    async def save(self, customer_id: str, platform: Platform, credentials: Credentials) -> None:
        await self.store.put(customer_id, platform, self.seal(customer_id, platform, credentials))

    async def load(self, customer_id: str, platform: Platform) -> Credentials | None:
        envelope = await self.store.get(customer_id, platform)
        return None if envelope is None else self.open(customer_id, platform, envelope)

    async def remove(self, customer_id: str, platform: Platform) -> bool:
        return await self.store.delete(customer_id, platform)

    async def connected(self, customer_id: str, platforms: Sequence[Platform]) -> list[Platform]:
        present = await self.store.present(customer_id, platforms)
        return [p for p, here in zip(platforms, present, strict=True) if here]
