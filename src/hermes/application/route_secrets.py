"""The secret Hermes generated for a routed account's webhook, read back to authenticate a delivery."""

from __future__ import annotations

from dataclasses import dataclass

from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.platform_inbound import InboundSides, route_key
from hermes.application.ports.routing import AccountRoutes
from hermes.domain.platform import Platform

WEBHOOK_SECRET = "webhookSecret"  # noqa: S105 - the name of a credential field
"""Where an inbound side keeps the secret it generated, among the account's (encrypted) credentials."""


@dataclass(slots=True)
class RouteSecrets:
    routes: AccountRoutes
    vault: CredentialVault
    inbound: InboundSides

    async def secret(self, platform: Platform, account: str) -> str | None:
        """The secret of the customer's account that routes the platform account `account` (a bot id); None when
        nobody routes it, or its credentials hold no secret (or cannot be read)."""
        side = self.inbound.inbound(platform)
        if side is None:
            return None
        owner = await self.routes.owner(route_key(side, account))
        if owner is None:
            return None
        try:
            credentials = await self.vault.load(owner.customer_id, platform, owner.account)
        except ValueError:
            return None
        value = None if credentials is None else credentials.get(WEBHOOK_SECRET)
        return value if isinstance(value, str) and value else None
