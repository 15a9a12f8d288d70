from __future__ import annotations

from dataclasses import dataclass

from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.mailboxes import Mailboxes
from hermes.application.ports.routing import PhoneRoutes
from hermes.application.ports.tools import CredentialVerifier, EnvCredentials
from hermes.domain.credentials import Credentials, parse_credentials
from hermes.domain.customer import Customer
from hermes.domain.errors import Conflict
from hermes.domain.platform import Platform


@dataclass(slots=True)
class ConnectPlatform:
    """Store a customer's credentials for a platform, encrypted.

    The credentials are validated field by field first; with `verify` one cheap
    authenticated call to the platform must succeed. WhatsApp is always verified,
    whatever `verify` says: the access token must be able to read the phone number id,
    which proves the number belongs to the caller (400 naming `accessToken` or
    `phoneNumberId` otherwise). Connecting WhatsApp registers the phone number id so
    inbound messages reach this customer; a number already registered to another
    customer, or the deployment's own single-user number, is a conflict, never a
    takeover. Connecting email with `imapHost` has its INBOX polled for new mail from
    then on (starting from its newest messages). Nothing is stored unless every step
    succeeds.
    """

    vault: CredentialVault
    routes: PhoneRoutes
    verifier: CredentialVerifier
    env: EnvCredentials
    mailboxes: Mailboxes

    async def __call__(self, customer: Customer, platform: Platform, body: object, verify: bool) -> None:
        credentials = parse_credentials(platform, body)
        if platform is Platform.WHATSAPP:
            await self._connect_whatsapp(customer, credentials)
            return
        if verify:
            await self.verifier.verify(platform, credentials)
        await self.vault.save(customer.id, platform, credentials)
        if platform is Platform.EMAIL:
            await (self.mailboxes.add if credentials.get("imapHost") else self.mailboxes.remove)(customer.id)

    async def _connect_whatsapp(self, customer: Customer, credentials: Credentials) -> None:
        # The proof comes first: without it anyone could route another business's messages
        # (one-time codes, personal data) to themselves by naming its number.
        await self.verifier.verify(Platform.WHATSAPP, credentials)
        phone_id = str(credentials["phoneNumberId"])
        single_user = self.env.get(Platform.WHATSAPP)
        if single_user is not None and str(single_user.get("phoneNumberId")) == phone_id:
            raise Conflict(f"WhatsApp phone number id {phone_id} is reserved by this deployment")
        try:
            previous = await self.vault.load(customer.id, Platform.WHATSAPP)
        except ValueError:
            previous = None  # unreadable (key gone): replacing it is exactly what reconnecting is for
        owner = await self.routes.claim(phone_id, customer.id)
        if owner != customer.id:
            raise Conflict(f"WhatsApp phone number id {phone_id} is already connected to another customer")
        try:
            await self.vault.save(customer.id, Platform.WHATSAPP, credentials)
        except BaseException:
            if previous is None or str(previous["phoneNumberId"]) != phone_id:
                await self.routes.release(phone_id, customer.id)
            raise
        if previous is not None and str(previous["phoneNumberId"]) != phone_id:
            await self.routes.release(str(previous["phoneNumberId"]), customer.id)
