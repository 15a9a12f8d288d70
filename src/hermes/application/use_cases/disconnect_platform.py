from __future__ import annotations

from dataclasses import dataclass

from hermes.application.account_health import AccountHealthRecorder
from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.mailboxes import Mailboxes
from hermes.application.ports.routing import PhoneRoutes
from hermes.application.use_cases.connect_platform import release_whatsapp_route
from hermes.domain.customer import Customer
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT
from hermes.domain.platform import Platform


@dataclass(slots=True)
class DisconnectPlatform:
    """Remove a customer's credentials for one account on a platform (`account`, default `default`), and
    the inbound routes only that account used; the customer's other accounts stay connected.

    Disconnecting the default email account also stops polling its INBOX. Disconnecting
    an account that is not connected is not an error: the end state is the one asked for.
    """

    vault: CredentialVault
    routes: PhoneRoutes
    mailboxes: Mailboxes
    health: AccountHealthRecorder | None = None

    async def __call__(self, customer: Customer, platform: Platform, account: str = DEFAULT_ACCOUNT) -> None:
        if platform is Platform.WHATSAPP:
            try:
                previous = await self.vault.load(customer.id, platform, account)
            except ValueError:
                previous = None  # undecryptable: still remove it
            if previous is not None:
                await release_whatsapp_route(
                    self.vault, self.routes, customer.id, str(previous["phoneNumberId"]), account
                )
        if platform is Platform.EMAIL and account == DEFAULT_ACCOUNT:
            await self.mailboxes.remove(customer.id)
        await self.vault.remove(customer.id, platform, account)
        if self.health is not None:
            await self.health.disconnected(customer.id, platform, account)
