from __future__ import annotations

from dataclasses import dataclass

from hermes.application.account_health import AccountHealthRecorder
from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.mailboxes import Mailboxes
from hermes.application.ports.routing import PhoneRoutes
from hermes.application.ports.tools import CredentialVerifier, EnvCredentials
from hermes.domain.credentials import Credentials, parse_credentials
from hermes.domain.customer import Customer
from hermes.domain.errors import Conflict
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT
from hermes.domain.platform import Platform


@dataclass(slots=True)
class ConnectPlatform:
    """Store a customer's credentials for one account on a platform, encrypted.

    A customer may connect several accounts per platform (`account`, default
    `default`); connecting an account again replaces its credentials. The credentials
    are validated field by field first; then one cheap authenticated call to the
    platform must succeed, so made-up credentials are never reported as connected
    (`verify=false` skips that call, except for WhatsApp). WhatsApp is always
    verified: the access token must be able to read the phone number id, which proves
    the number belongs to the caller (400 naming `accessToken` or `phoneNumberId`
    otherwise). Connecting WhatsApp registers the phone number id so inbound messages
    reach this customer; a number already registered to another customer, or the
    deployment's own single-user number, is a conflict, never a takeover. Connecting
    the default email account with `imapHost` has its INBOX polled for new mail from
    then on (starting from its newest messages). Nothing is stored unless every step
    succeeds.
    """

    vault: CredentialVault
    routes: PhoneRoutes
    verifier: CredentialVerifier
    env: EnvCredentials
    mailboxes: Mailboxes
    health: AccountHealthRecorder | None = None

    async def __call__(
        self, customer: Customer, platform: Platform, body: object, verify: bool = True, account: str = DEFAULT_ACCOUNT
    ) -> None:
        credentials = parse_credentials(platform, body)
        if platform is Platform.WHATSAPP:
            await self._connect_whatsapp(customer, credentials, account)
        else:
            if verify:
                await self.verifier.verify(platform, credentials)
            await self.vault.save(customer.id, platform, credentials, account)
            if platform is Platform.EMAIL and account == DEFAULT_ACCOUNT:
                await (self.mailboxes.add if credentials.get("imapHost") else self.mailboxes.remove)(customer.id)
        if self.health is not None:
            await self.health.connected(customer.id, platform, account)

    async def _connect_whatsapp(self, customer: Customer, credentials: Credentials, account: str) -> None:
        # The proof comes first: without it anyone could route another business's messages
        # (one-time codes, personal data) to themselves by naming its number.
        await self.verifier.verify(Platform.WHATSAPP, credentials)
        phone_id = str(credentials["phoneNumberId"])
        single_user = self.env.get(Platform.WHATSAPP)
        if single_user is not None and str(single_user.get("phoneNumberId")) == phone_id:
            raise Conflict(f"WhatsApp phone number id {phone_id} is reserved by this deployment")
        try:
            previous = await self.vault.load(customer.id, Platform.WHATSAPP, account)
        except ValueError:
            previous = None  # unreadable (key gone): replacing it is exactly what reconnecting is for
        owner = await self.routes.claim(phone_id, customer.id)
        if owner != customer.id:
            raise Conflict(f"WhatsApp phone number id {phone_id} is already connected to another customer")
        try:
            await self.vault.save(customer.id, Platform.WHATSAPP, credentials, account)
        except BaseException:
            if previous is None or str(previous["phoneNumberId"]) != phone_id:
                await self._release_unless_used(customer.id, phone_id, account)
            raise
        if previous is not None and str(previous["phoneNumberId"]) != phone_id:
            await self._release_unless_used(customer.id, str(previous["phoneNumberId"]), account)

    async def _release_unless_used(self, customer_id: str, phone_id: str, account: str) -> None:
        await release_whatsapp_route(self.vault, self.routes, customer_id, phone_id, account)


async def release_whatsapp_route(
    vault: CredentialVault, routes: PhoneRoutes, customer_id: str, phone_id: str, leaving: str
) -> None:
    """Release a number's route unless another of the customer's WhatsApp accounts still uses that number."""
    for platform, other in await vault.accounts(customer_id):
        if platform is not Platform.WHATSAPP or other == leaving:
            continue
        try:
            held = await vault.load(customer_id, Platform.WHATSAPP, other)
        except ValueError:
            continue
        if held is not None and str(held.get("phoneNumberId")) == phone_id:
            return
    await routes.release(phone_id, customer_id)
