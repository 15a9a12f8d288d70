from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hermes.application.ports.managed_oauth import AccountOverview
from hermes.domain.managed_oauth import AccountHealth
from hermes.domain.platform import Platform


@dataclass(frozen=True, slots=True)
class AccountState:
    platform: Platform
    account: str
    status: AccountHealth
    connected_at: datetime | None
    last_checked_at: datetime | None
    last_error: str | None
    expires_at: datetime | None


@dataclass(slots=True)
class ListAccounts:
    """Every connected account of the customer with its health.

    `status` is `connected` (the platform accepted the credentials at the last call or
    check), `needs_reauth` (the platform said they are revoked or expired: the owner
    connects the account again) or `failing` (the last check failed for another reason,
    in `lastError`). An account connected before health was recorded reads `connected`
    until its first call or check.
    """

    overview: AccountOverview

    async def __call__(self, customer_id: str) -> list[AccountState]:
        held, recorded = await self.overview.read(customer_id)
        known = {(s.platform, s.account): s for s in recorded}
        states = []
        for platform, account in held:
            s = known.get((platform, account))
            states.append(
                AccountState(
                    platform,
                    account,
                    s.status if s else AccountHealth.CONNECTED,
                    s.connected_at if s else None,
                    s.last_checked_at if s else None,
                    s.last_error if s else None,
                    s.expires_at if s else None,
                )
            )
        return states
