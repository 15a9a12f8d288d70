from __future__ import annotations

from dataclasses import dataclass

from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.credentials import CredentialStore
from hermes.application.ports.platform_inbound import InboundSides, route_key
from hermes.application.ports.routing import AccountRoutes, RouteOwner
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT


@dataclass(slots=True)
class NameAccountRoutes:
    """Give routes written before routes named their account the account that uses them.

    Such routes name only the customer, which now reads as its default account, so messages to a
    second number or bot connected back then would land under `default`. Each of a customer's other
    accounts on a platform that receives messages is read; when its platform account's route names
    the customer's default account, and the default account's credentials name another platform
    account (or none), the route moves to the account that uses it. Idempotent; returns how many moved.
    """

    store: CredentialStore
    vault: CredentialVault
    routes: AccountRoutes
    inbound: InboundSides

    async def __call__(self) -> int:
        moved = 0
        async for customer_id, platform, name, _ in self.store.scan():
            side = self.inbound.inbound(platform)
            if name == DEFAULT_ACCOUNT or side is None or side.polled:
                continue
            try:
                credentials = await self.vault.load(customer_id, platform, name)
                default = await self.vault.load(customer_id, platform)
            except ValueError:
                continue  # unreadable: a reconnect sets its route right
            if credentials is None:
                continue
            account_id = side.account_id(credentials)
            if default is not None and side.account_id(default) == account_id:
                continue  # both names hold it (possible back then): the default account keeps its route
            key = route_key(side, account_id)
            legacy = RouteOwner(customer_id)
            if await self.routes.owner(key) != legacy:
                continue
            await self.routes.release(key, legacy)
            if await self.routes.claim(key, RouteOwner(customer_id, name)) == RouteOwner(customer_id, name):
                moved += 1
        return moved
