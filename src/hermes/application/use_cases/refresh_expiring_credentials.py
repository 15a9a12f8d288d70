from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from hermes.application.fresh_credentials import FreshCredentials
from hermes.application.token_renewals import TokenRenewals
from hermes.domain.account_health import AccountRef
from hermes.domain.errors import HermesError

log = logging.getLogger("hermes.oauth.refresh")


@dataclass(frozen=True, slots=True)
class RenewalPass:
    renewed: int
    more: bool  # the pass stopped at its batch size: more accounts are due now


@dataclass(slots=True)
class RefreshExpiringCredentials:
    """Renew the managed-OAuth tokens whose turn has come, so that accounts nobody uses stay connected.

    Instances share the renewal schedule and claim the accounts that are due from it:
    a claim moves the account's turn a lease ahead, so one instance renews it, and one
    that dies mid-renewal leaves it to be claimed again when the lease ends. A pass
    opens only the credentials it claimed. Each renewal also takes the same
    per-account lock as a tool call's, so a tool call and the background renewal
    never use one grant twice. A refused grant marks its account as needing the owner
    and takes it out of the schedule; other failures are retried when the lease ends.
    """

    fresh: FreshCredentials
    renewals: TokenRenewals
    batch: int = 50
    concurrency: int = 4
    lease: float = 120.0  # longer than a renewal can take: the lock's wait and its hold

    async def __call__(self) -> RenewalPass:
        if not self.renewals.platforms:
            return RenewalPass(0, False)
        now = self.fresh.clock.now().timestamp()
        due = await self.renewals.schedule.claim(now, self.batch, self.lease)
        limit = asyncio.Semaphore(self.concurrency)

        async def one(ref: AccountRef) -> bool:
            async with limit:
                try:
                    return await self._renew(ref)
                except HermesError as exc:
                    log.info("customer %s: %s not renewed: %s", ref.customer_id, ref.platform.value, exc.detail)
                    return False

        results = await asyncio.gather(*(one(ref) for ref in due))
        return RenewalPass(sum(results), len(due) >= self.batch)

    async def _renew(self, ref: AccountRef) -> bool:
        c, p, a = ref.customer_id, ref.platform, ref.account
        try:
            credentials = await self.fresh.vault.load(c, p, a)
        except ValueError:
            credentials = None  # unreadable: the owner learns it from the tool error, nothing to renew
        if credentials is None or p not in self.fresh.platforms:
            await self.renewals.schedule.remove(ref)
            return False
        if not self.fresh.due(p, credentials):
            await self.renewals.track(c, p, a, credentials)  # renewed meanwhile, or replaced by hand
            return False
        renewed = await self.fresh(c, p, credentials, a)
        return renewed is not credentials  # the same ones: renewing failed for a passing reason, the lease retries

    async def schedule_page(self, position: str, size: int) -> tuple[int, str | None]:
        """One bounded step of a walk through the stored accounts: those holding a renewable managed-OAuth
        token and not in the renewal schedule get their turn. How many were added, and where the next step
        starts (None at the end).

        Tokens stored since the schedule exists are scheduled when they are stored; the walk
        covers the ones stored before, or a schedule that was lost."""
        page = await self.fresh.vault.store.page(position, size)
        managed = [AccountRef(*account) for account in page.accounts if account[1] in self.renewals.platforms]
        limit = asyncio.Semaphore(self.concurrency)

        async def when(ref: AccountRef) -> float | None:
            async with limit:
                try:
                    credentials = await self.fresh.vault.load(ref.customer_id, ref.platform, ref.account)
                except ValueError:
                    return None
            return None if credentials is None else self.renewals.renews_at(ref.platform, credentials)

        times = await asyncio.gather(*(when(ref) for ref in managed))
        due = {ref: at for ref, at in zip(managed, times, strict=True) if at is not None}
        return await self.renewals.schedule.add(due), page.next
