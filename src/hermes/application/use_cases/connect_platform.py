from __future__ import annotations

from dataclasses import dataclass

from hermes.application.account_health import AccountHealthRecorder
from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.mailboxes import Mailboxes, PolledAccount
from hermes.application.ports.platform_inbound import InboundSide, InboundSides, route_key
from hermes.application.ports.routing import AccountRoutes, RouteOwner
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
    (`verify=false` skips that call). A platform that receives messages (WhatsApp,
    Instagram, Telegram) is always verified, whatever `verify` says: the credentials
    must be able to read the account they name (the phone number id, the Instagram
    user id, the bot), which proves the account belongs to the caller (400 naming the
    field otherwise). Connecting such a platform routes the account's inbound messages
    to this customer; an account already routed to another customer, or the
    deployment's own single-user account, is a conflict, never a takeover; so is
    connecting one platform account under two account names (409 naming the account
    that has it). Messages to each account are routed to it by name. Connecting an
    email account with `imapHost` has its INBOX polled for new mail from then on
    (starting from its newest messages). Nothing is stored unless every step succeeds.
    """

    vault: CredentialVault
    routes: AccountRoutes
    verifier: CredentialVerifier
    env: EnvCredentials
    inbound: InboundSides
    mailboxes: Mailboxes
    health: AccountHealthRecorder | None = None

    async def __call__(
        self, customer: Customer, platform: Platform, body: object, verify: bool = True, name: str = DEFAULT_ACCOUNT
    ) -> bool:
        """Returns whether the platform was called to verify the credentials."""
        credentials = parse_credentials(platform, body)
        side = self.inbound.inbound(platform)
        if side is not None and not side.polled:
            await self._connect_routed(customer, platform, side, credentials, name)
            verify = True
        else:
            if verify:
                await self.verifier.verify(platform, credentials)
            await self.vault.save(customer.id, platform, credentials, name)
            if side is not None:  # polled by Hermes itself (email's INBOX)
                mailbox = PolledAccount(customer.id, name)
                await (self.mailboxes.add if side.account_id(credentials) else self.mailboxes.remove)(mailbox)
        if self.health is not None:
            await self.health.connected(customer.id, platform, name)
        return verify

    async def _connect_routed(
        self, customer: Customer, platform: Platform, side: InboundSide, credentials: Credentials, name: str
    ) -> None:
        # The proof comes first: without it anyone could route another business's messages
        # (one-time codes, personal data) to themselves by naming its account.
        await self.verifier.verify(platform, credentials)
        account = side.account_id(credentials)
        single_user = self.env.get(platform)
        if single_user is not None and side.account_id(single_user) == account:
            raise Conflict(f"{platform.display_name} {side.account_name} {account} is reserved by this deployment")
        try:
            previous = await self.vault.load(customer.id, platform, name)
        except ValueError:
            previous = None  # unreadable (key gone): replacing it is exactly what reconnecting is for
        before = side.account_id(previous) if previous is not None else None
        await self._claim(customer, platform, side, account, name)
        try:
            stored = await side.connected(customer.id, credentials)
            await self.vault.save(customer.id, platform, stored, name)
        except BaseException:
            if before != account:
                await release_route(self.vault, self.routes, side, customer.id, platform, account, name)
            raise
        if (
            previous is not None
            and before != account
            and await release_route(self.vault, self.routes, side, customer.id, platform, str(before), name)
        ):
            await side.disconnected(previous)

    async def _claim(self, customer: Customer, platform: Platform, side: InboundSide, account: str, name: str) -> None:
        key = route_key(side, account)
        me = RouteOwner(customer.id, name)
        holder = await self.routes.claim(key, me)
        if holder != me and holder.customer_id == customer.id:
            if holder.account in await accounts_naming(self.vault, side, customer.id, platform, account, name):
                raise Conflict(
                    f"{platform.display_name} {side.account_name} {account} is already connected as your account "
                    f'"{holder.account}"; disconnect that account first, or connect it under that name'
                )
            # The route names an account that no longer uses it (routes written before they named
            # their account all name the default one): it is this account's now.
            await self.routes.release(key, holder)
            holder = await self.routes.claim(key, me)
        if holder != me:
            raise Conflict(
                f"{platform.display_name} {side.account_name} {account} is already connected to another customer"
            )


async def accounts_naming(
    vault: CredentialVault,
    side: InboundSide,
    customer_id: str,
    platform: Platform,
    account_id: str,
    leaving: str,
) -> list[str]:
    """The names of the customer's accounts on the platform, other than `leaving`, whose credentials name
    the platform account `account_id`."""
    names = []
    for held_platform, other in await vault.accounts(customer_id):
        if held_platform is not platform or other == leaving:
            continue
        try:
            held = await vault.load(customer_id, platform, other)
        except ValueError:
            continue
        if held is not None and side.account_id(held) == account_id:
            names.append(other)
    return names


async def release_route(
    vault: CredentialVault,
    routes: AccountRoutes,
    side: InboundSide,
    customer_id: str,
    platform: Platform,
    account_id: str,
    leaving: str,
) -> bool:
    """The customer's account `leaving` no longer uses the platform account `account_id`: release its route.

    A route that another of the customer's accounts still names (possible only for routes written
    before routes named their account) moves to that account instead. Returns whether delivery at the
    platform should stop: nobody of this customer uses the platform account any more.
    """
    key = route_key(side, account_id)
    holder = await routes.owner(key)
    others = await accounts_naming(vault, side, customer_id, platform, account_id, leaving)
    if holder is not None and holder.customer_id == customer_id and holder.account not in others:
        await routes.release(key, holder)
        if others:
            await routes.claim(key, RouteOwner(customer_id, others[0]))
    return not others and (holder is None or holder.customer_id == customer_id)
