from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from hermes.application.account_health import AccountHealthRecorder
from hermes.application.credential_vault import CredentialVault
from hermes.application.fresh_credentials import FreshCredentials
from hermes.application.ports.account_health import HealthSchedule
from hermes.application.ports.clock import Clock
from hermes.application.ports.tools import CredentialVerifier
from hermes.domain.account_health import DEFAULT_CHECK_HOURS, AccountRef, first_check, next_check
from hermes.domain.errors import HermesError

log = logging.getLogger("hermes.accounts")


@dataclass(frozen=True, slots=True)
class CheckPass:
    checked: int
    more: bool  # the pass stopped at its batch size: more accounts are due now


@dataclass(slots=True)
class CheckAccountHealth:
    """Check the accounts whose turn has come with the platform's cheapest authenticated call.

    Every account is checked at most once per interval (6 hours by default), at a
    time spread at random over a fifth of it, so checks do not bunch up. Instances
    share the schedule and claim accounts from it: a claim moves the account's turn a
    lease ahead, so one instance checks it and one that dies mid-check leaves it to
    be claimed again. A revoked or expired credential marks the account
    `needs_reauth`; any other failure `failing`; a success `connected`.
    """

    vault: CredentialVault
    verifier: CredentialVerifier
    schedule: HealthSchedule
    health: AccountHealthRecorder
    clock: Clock
    fresh: FreshCredentials | None = None
    interval: float = DEFAULT_CHECK_HOURS * 3600
    batch: int = 50
    concurrency: int = 8
    lease: float = 120.0
    uniform: Callable[[float, float], float] = field(default=random.uniform)

    async def __call__(self) -> CheckPass:
        now = self.clock.now().timestamp()
        due = await self.schedule.claim(now, self.batch, self.lease)
        limit = asyncio.Semaphore(self.concurrency)

        async def one(ref: AccountRef) -> bool:
            async with limit:
                try:
                    return await self._check(ref)
                except HermesError as exc:
                    # The lease brings the account back: a store that failed now is asked again later.
                    log.warning("health check of %s %s failed: %s", ref.platform.value, ref.account, exc.detail)
                    return False

        results = await asyncio.gather(*(one(ref) for ref in due))
        return CheckPass(sum(results), len(due) >= self.batch)

    async def schedule_unscheduled(self) -> int:
        """Give every stored account without a turn one, anywhere in the next interval, walking the whole
        store now in this process alone (the backfill at start-up walks it once per deployment, paced).
        Returns how many were added."""
        added, position = 0, ""
        while True:
            step, following = await self.schedule_page(position, 500)
            added += step
            if following is None:
                return added
            position = following

    async def schedule_page(self, position: str, size: int) -> tuple[int, str | None]:
        """One bounded step of that walk: the stored accounts after `position` without a turn get one.
        How many were added, and where the next step starts (None at the end).

        Accounts connected since checks exist get their turn when they connect; the walk covers
        the ones stored before, or a schedule that was lost."""
        page = await self.vault.store.page(position, size)
        now = self.clock.now().timestamp()
        due = {AccountRef(*account): first_check(now, self.interval, self.uniform) for account in page.accounts}
        return await self.schedule.add(due), page.next

    async def _check(self, ref: AccountRef) -> bool:
        c, p, a = ref.customer_id, ref.platform, ref.account
        try:
            credentials = await self.vault.load(c, p, a)
        except ValueError:
            await self.health.failed(c, p, a, HermesError("the stored credentials can no longer be read"), checked=True)
            await self._again(ref)
            return True
        if credentials is None:
            await self.schedule.remove(ref)  # disconnected: nothing left to check
            return False
        try:
            if self.fresh is not None:
                credentials = await self.fresh(c, p, credentials, a)
            await self.verifier.verify(p, credentials)
        except HermesError as exc:
            await self.health.failed(c, p, a, exc, checked=True)
        else:
            await self.health.succeeded(c, p, a, checked=True)
        await self._again(ref)
        return True

    async def _again(self, ref: AccountRef) -> None:
        now = self.clock.now().timestamp()
        await self.schedule.set(ref, next_check(now, self.interval, self.uniform))
