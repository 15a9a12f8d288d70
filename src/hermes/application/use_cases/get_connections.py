from __future__ import annotations

from dataclasses import dataclass

from hermes.application.credential_vault import CredentialVault
from hermes.domain.platform import ALL_PLATFORMS, Platform


@dataclass(slots=True)
class GetConnections:
    """Which of the eight platforms a customer has connected (any of its accounts there), and in
    `accounts` each connected account with its health: `status` connected, needs_reauth (revoked or
    expired: the owner connects it again) or failing (in `lastError`), with `connectedAt`,
    `lastCheckedAt` and `expiresAt`."""

    vault: CredentialVault

    async def __call__(self, customer_id: str) -> dict[Platform, bool]:
        present = await self.vault.store.present(customer_id, ALL_PLATFORMS)
        return dict(zip(ALL_PLATFORMS, present, strict=True))
