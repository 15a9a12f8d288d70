from __future__ import annotations

from dataclasses import dataclass

from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.mailboxes import Mailboxes
from hermes.application.ports.platform_inbound import InboundSides, route_key
from hermes.application.ports.routing import AccountRoutes
from hermes.domain.customer import Customer
from hermes.domain.platform import Platform


@dataclass(slots=True)
class DisconnectPlatform:
    """Remove a customer's credentials for a platform and its inbound routes.

    Disconnecting email also stops polling its INBOX. Disconnecting a platform that is
    not connected is not an error: the end state is the one asked for.
    """

    vault: CredentialVault
    routes: AccountRoutes
    inbound: InboundSides
    mailboxes: Mailboxes

    async def __call__(self, customer: Customer, platform: Platform) -> None:
        side = self.inbound.inbound(platform)
        if side is not None and side.polled:
            await self.mailboxes.remove(customer.id)
        elif side is not None:
            try:
                previous = await self.vault.load(customer.id, platform)
            except ValueError:
                previous = None  # undecryptable: still remove it
            if previous is not None:
                await self.routes.release(route_key(side, side.account_id(previous)), customer.id)
                await side.disconnected(previous)
        await self.vault.remove(customer.id, platform)
