from __future__ import annotations

from dataclasses import dataclass

from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.mailboxes import Mailboxes
from hermes.application.ports.platform_inbound import InboundSide, InboundSides, route_key
from hermes.application.ports.routing import AccountRoutes
from hermes.application.ports.tools import CredentialVerifier, EnvCredentials
from hermes.domain.credentials import Credentials, parse_credentials
from hermes.domain.customer import Customer
from hermes.domain.errors import Conflict
from hermes.domain.platform import Platform


@dataclass(slots=True)
class ConnectPlatform:
    """Store a customer's credentials for a platform, encrypted.

    The credentials are validated field by field first; with `verify` one cheap
    authenticated call to the platform must succeed. A platform that receives messages
    (WhatsApp, Instagram, Telegram) is always verified, whatever `verify` says: the
    credentials must be able to read the account they name (the phone number id, the
    Instagram user id, the bot), which proves the account belongs to the caller (400
    naming the field otherwise). Connecting such a platform routes the account's
    inbound messages to this customer; an account already routed to another customer,
    or the deployment's own single-user account, is a conflict, never a takeover.
    Connecting email with `imapHost` has its INBOX polled for new mail from then on
    (starting from its newest messages). Nothing is stored unless every step succeeds.
    """

    vault: CredentialVault
    routes: AccountRoutes
    verifier: CredentialVerifier
    env: EnvCredentials
    inbound: InboundSides
    mailboxes: Mailboxes

    async def __call__(self, customer: Customer, platform: Platform, body: object, verify: bool) -> bool:
        """Returns whether the platform was called to verify the credentials."""
        credentials = parse_credentials(platform, body)
        side = self.inbound.inbound(platform)
        if side is not None and not side.polled:
            await self._connect_routed(customer, platform, side, credentials)
            return True
        if verify:
            await self.verifier.verify(platform, credentials)
        await self.vault.save(customer.id, platform, credentials)
        if side is not None:  # polled by Hermes itself (email's INBOX): nothing to claim at a platform
            await (self.mailboxes.add if side.account_id(credentials) else self.mailboxes.remove)(customer.id)
        return verify

    async def _connect_routed(
        self, customer: Customer, platform: Platform, side: InboundSide, credentials: Credentials
    ) -> None:
        # The proof comes first: without it anyone could route another business's messages
        # (one-time codes, personal data) to themselves by naming its account.
        await self.verifier.verify(platform, credentials)
        account = side.account_id(credentials)
        single_user = self.env.get(platform)
        if single_user is not None and side.account_id(single_user) == account:
            raise Conflict(f"{platform.display_name} {side.account_name} {account} is reserved by this deployment")
        try:
            previous = await self.vault.load(customer.id, platform)
        except ValueError:
            previous = None  # unreadable (key gone): replacing it is exactly what reconnecting is for
        before = side.account_id(previous) if previous is not None else None
        key = route_key(side, account)
        owner = await self.routes.claim(key, customer.id)
        if owner != customer.id:
            raise Conflict(
                f"{platform.display_name} {side.account_name} {account} is already connected to another customer"
            )
        try:
            stored = await side.connected(customer.id, credentials)
            await self.vault.save(customer.id, platform, stored)
        except BaseException:
            if before != account:
                await self.routes.release(key, customer.id)
            raise
        if previous is not None and before != account:
            await self.routes.release(route_key(side, str(before)), customer.id)
            await side.disconnected(previous)
