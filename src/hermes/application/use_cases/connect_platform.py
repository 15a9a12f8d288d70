from __future__ import annotations

from dataclasses import dataclass

from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.routing import PhoneRoutes
from hermes.application.ports.tools import CredentialVerifier
from hermes.domain.credentials import parse_credentials
from hermes.domain.customer import Customer
from hermes.domain.errors import Conflict
from hermes.domain.platform import Platform


@dataclass(slots=True)
class ConnectPlatform:
    """Store a customer's credentials for a platform, encrypted.

    The credentials are validated field by field first; with `verify` one cheap
    authenticated call to the platform must succeed. Connecting WhatsApp registers
    the phone number id so inbound messages reach this customer; a number already
    registered to another customer is a conflict, never a takeover. Nothing is
    stored unless every step succeeds.
    """

    vault: CredentialVault
    routes: PhoneRoutes
    verifier: CredentialVerifier

    async def __call__(self, customer: Customer, platform: Platform, body: object, verify: bool) -> None:
        credentials = parse_credentials(platform, body)
        if verify:
            await self.verifier.verify(platform, credentials)
        if platform is not Platform.WHATSAPP:
            await self.vault.save(customer.id, platform, credentials)
            return
        phone_id = str(credentials["phoneNumberId"])
        previous = await self.vault.load(customer.id, platform)
        owner = await self.routes.claim(phone_id, customer.id)
        if owner != customer.id:
            raise Conflict(f"WhatsApp phone number id {phone_id} is already connected to another customer")
        try:
            await self.vault.save(customer.id, platform, credentials)
        except BaseException:
            if previous is None or str(previous["phoneNumberId"]) != phone_id:
                await self.routes.release(phone_id, customer.id)
            raise
        if previous is not None and str(previous["phoneNumberId"]) != phone_id:
            await self.routes.release(str(previous["phoneNumberId"]), customer.id)
