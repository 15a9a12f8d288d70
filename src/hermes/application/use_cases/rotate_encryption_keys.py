from __future__ import annotations

from dataclasses import dataclass

from hermes.application.credential_vault import credential_context
from hermes.application.ports.callbacks import CallbackStore
from hermes.application.ports.credentials import Cipher, CredentialStore
from hermes.application.use_cases.register_callback import callback_context


@dataclass(frozen=True, slots=True)
class RotationReport:
    rotated: int
    already_current: int
    changed_meanwhile: int
    unreadable: int
    callback_secrets_rotated: int = 0


@dataclass(slots=True)
class RotateEncryptionKeys:
    """Re-encrypt every stored credential (each account of each platform), and every callback signing secret,
    under the current (first) key.

    Envelopes already sealed with the current key are skipped, so an interrupted
    run can simply be started again. A credential replaced while the rotation runs
    keeps its new value. Envelopes no configured key can open are counted, not
    touched.
    """

    cipher: Cipher
    store: CredentialStore
    callbacks: CallbackStore

    async def __call__(self) -> RotationReport:
        rotated = current = changed = unreadable = 0
        async for customer_id, platform, account, envelope in self.store.scan():
            if self.cipher.is_current(envelope):
                current += 1
                continue
            context = credential_context(customer_id, platform, account)
            try:
                plaintext = self.cipher.decrypt(envelope, context)
            except ValueError:
                unreadable += 1
                continue
            sealed = self.cipher.encrypt(plaintext, context)
            if await self.store.replace_if_unchanged(customer_id, platform, envelope, sealed, account):
                rotated += 1
            else:
                changed += 1
        secrets_rotated = 0
        for customer_id in await self.callbacks.customers():
            callback = await self.callbacks.get(customer_id)
            if callback is None or self.cipher.is_current(callback.secret_envelope):
                continue
            context = callback_context(customer_id)
            try:
                plaintext = self.cipher.decrypt(callback.secret_envelope, context)
            except ValueError:
                unreadable += 1
                continue
            sealed = self.cipher.encrypt(plaintext, context)
            if await self.callbacks.replace_secret(customer_id, callback.secret_envelope, sealed):
                secrets_rotated += 1
            else:
                changed += 1
        return RotationReport(rotated, current, changed, unreadable, secrets_rotated)
