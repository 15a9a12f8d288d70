"""When each managed-OAuth account's token must be renewed, in a schedule every instance shares.

The schedule is written whenever such tokens are stored (a consent), renewed or removed
(a disconnect, a refused renewal), so the background renewal touches only the accounts
that are due instead of opening every stored credential. An entry that no longer
matches what is stored (manual credentials pasted over managed ones, an account
removed while its renewal was in flight) is put right or dropped when its turn comes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hermes.application.ports.managed_oauth import PlatformAuthorization, RenewalSchedule
from hermes.domain.account_health import AccountRef
from hermes.domain.credentials import Credentials
from hermes.domain.managed_oauth import EXPIRES_FIELD
from hermes.domain.platform import Platform


def renews_at(authorization: PlatformAuthorization, platform: Platform, credentials: Credentials) -> float | None:
    """When (epoch seconds) these credentials must be renewed; None when they cannot be (no expiry, no grant)."""
    ends = credentials.get(EXPIRES_FIELD)
    if not isinstance(ends, int) or not authorization.renewable(platform, credentials):
        return None  # e.g. a LinkedIn app without refresh tokens: used until the platform refuses it
    return ends - authorization.refresh_ahead(platform)


@dataclass(slots=True)
class TokenRenewals:
    """Keeps each managed-OAuth account's turn in the renewal schedule in step with its stored tokens."""

    authorization: PlatformAuthorization
    schedule: RenewalSchedule
    _managed: frozenset[Platform] = field(init=False)

    def __post_init__(self) -> None:
        self._managed = frozenset(self.authorization.platforms())

    @property
    def platforms(self) -> frozenset[Platform]:
        return self._managed

    def renews_at(self, platform: Platform, credentials: Credentials) -> float | None:
        return renews_at(self.authorization, platform, credentials) if platform in self._managed else None

    async def track(self, customer_id: str, platform: Platform, account: str, credentials: Credentials) -> None:
        """These credentials were just stored for the account: its turn is when they must be renewed, if ever."""
        if platform not in self._managed:
            return
        at = self.renews_at(platform, credentials)
        ref = AccountRef(customer_id, platform, account)
        await (self.schedule.remove(ref) if at is None else self.schedule.set(ref, at))

    async def forget(self, customer_id: str, platform: Platform, account: str) -> None:
        """Nothing of the account's is renewed any more (removed, or its grant refused)."""
        if platform in self._managed:
            await self.schedule.remove(AccountRef(customer_id, platform, account))
