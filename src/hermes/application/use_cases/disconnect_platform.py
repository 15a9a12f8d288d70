from __future__ import annotations

from dataclasses import dataclass

from hermes.application.account_health import AccountHealthRecorder
from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.mailboxes import Mailboxes, PolledAccount
from hermes.application.ports.platform_inbound import InboundSides
from hermes.application.ports.routing import AccountRoutes
from hermes.application.use_cases.connect_platform import release_route
from hermes.domain.customer import Customer
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT
from hermes.domain.platform import Platform


@dataclass(slots=True)
class DisconnectPlatform:
    """Remove a customer's credentials for one account on a platform (`account`, default `default`), and
    the inbound routes only that account used; the customer's other accounts stay connected.

    Disconnecting an email account also stops polling its INBOX. Disconnecting
    an account that is not connected is not an error: the end state is the one asked for.
    """

    vault: CredentialVault
    routes: AccountRoutes
    inbound: InboundSides
    mailboxes: Mailboxes
    health: AccountHealthRecorder | None = None

    async def __call__(self, customer: Customer, platform: Platform, name: str = DEFAULT_ACCOUNT) -> None:
        side = self.inbound.inbound(platform)
        if side is not None and side.polled:
            await self.mailboxes.remove(PolledAccount(customer.id, name))
        elif side is not None:
            try:
                previous = await self.vault.load(customer.id, platform, name)
            except ValueError:
                previous = None  # undecryptable: still remove it
            if previous is not None and await release_route(
                self.vault, self.routes, side, customer.id, platform, side.account_id(previous), name
            ):
                await side.disconnected(previous)
        await self.vault.remove(customer.id, platform, name)
        if self.health is not None:
            await self.health.disconnected(customer.id, platform, name)
