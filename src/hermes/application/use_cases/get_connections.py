from __future__ import annotations

from dataclasses import dataclass

from hermes.application.credential_vault import CredentialVault
from hermes.domain.platform import Platform, all_platforms


@dataclass(slots=True)
class GetConnections:
    """Which platforms a customer has connected, in one store round trip."""

    vault: CredentialVault

    async def __call__(self, customer_id: str) -> dict[Platform, bool]:
        present = await self.vault.store.present(customer_id, all_platforms())
        return dict(zip(all_platforms(), present, strict=True))
