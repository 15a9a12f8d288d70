from __future__ import annotations

from dataclasses import dataclass

from hermes.application.credential_vault import credential_context
from hermes.application.ports.credentials import Cipher, CredentialStore


@dataclass(frozen=True, slots=True)
class RotationReport:
    rotated: int
    already_current: int
    changed_meanwhile: int
    unreadable: int


@dataclass(slots=True)
class RotateEncryptionKeys:
    """Re-encrypt every stored credential under the current (first) key.

    Envelopes already sealed with the current key are skipped, so an interrupted
    run can simply be started again. A credential replaced while the rotation runs
    keeps its new value. Envelopes no configured key can open are counted, not
    touched.
    """

    cipher: Cipher
    store: CredentialStore

    async def __call__(self) -> RotationReport:
        rotated = current = changed = unreadable = 0
        async for customer_id, platform, envelope in self.store.scan():
            if self.cipher.is_current(envelope):
                current += 1
                continue
            context = credential_context(customer_id, platform)
            try:
                plaintext = self.cipher.decrypt(envelope, context)
            except ValueError:
                unreadable += 1
                continue
            sealed = self.cipher.encrypt(plaintext, context)
            if await self.store.replace_if_unchanged(customer_id, platform, envelope, sealed):
                rotated += 1
            else:
                changed += 1
        return RotationReport(rotated, current, changed, unreadable)
