from __future__ import annotations

from dataclasses import dataclass

from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.mailboxes import Mailboxes
from hermes.application.ports.routing import PhoneRoutes
from hermes.domain.customer import Customer
from hermes.domain.platform import Platform


@dataclass(slots=True)
class DisconnectPlatform:
    """Remove a customer's credentials for a platform and its inbound routes.

    Disconnecting email also stops polling its INBOX. Disconnecting a platform that is
    not connected is not an error: the end state is the one asked for.
    """

    vault: CredentialVault
    routes: PhoneRoutes
    mailboxes: Mailboxes

    async def __call__(self, customer: Customer, platform: Platform) -> None:
        if platform is Platform.WHATSAPP:
            try:
                previous = await self.vault.load(customer.id, platform)
            except ValueError:
                previous = None  # undecryptable: still remove it
            if previous is not None:
                await self.routes.release(str(previous["phoneNumberId"]), customer.id)
        if platform is Platform.EMAIL:
            await self.mailboxes.remove(customer.id)
        await self.vault.remove(customer.id, platform)
