"""The account overview over a credential store and a status store read one after the other."""

from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.credentials import CredentialStore
from hermes.application.ports.managed_oauth import AccountOverview, AccountStatuses
from hermes.domain.managed_oauth import AccountStatus
from hermes.domain.platform import Platform


@dataclass(slots=True)
class SeparateAccountOverview(AccountOverview):
    """For stores that cannot read both at once (embedded mode, in-memory tests): two reads."""

    store: CredentialStore
    statuses: AccountStatuses

    async def read(self, customer_id: str) -> tuple[list[tuple[Platform, str]], list[AccountStatus]]:
        return await self.store.accounts(customer_id), await self.statuses.all(customer_id)
