from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field

from hermes.application.ports.account_health import BackfillProgress
from hermes.application.use_cases.check_account_health import CheckAccountHealth

log = logging.getLogger("hermes.accounts")


@dataclass(frozen=True, slots=True)
class BackfillRun:
    done: bool  # every stored account has had a turn (now, or by an earlier run)
    added: int  # accounts this run gave a turn
    steps: int  # steps through the credential store this run took


@dataclass(slots=True)
class BackfillHealthSchedule:
    """Give every stored account a turn in the health-check schedule, once per deployment.

    Accounts connected since checks exist are scheduled when they connect; this covers
    the ones stored before, or a schedule that was lost. One instance at a time walks
    the credential store, under a lease it renews at every step; the position it
    reached is recorded with each renewal, so an instance that stops half-way leaves
    the rest to whichever takes the lease next. Each step reads a bounded number of
    entries and is followed by a pause, so the walk never crowds out the requests the
    store serves. Once the walk ends, the backfill is marked done and no instance
    walks the store again.
    """

    check: CheckAccountHealth
    progress: BackfillProgress
    page: int = 500
    pause: float = 0.05
    lease: float = 30.0
    holder: str = field(default_factory=lambda: secrets.token_hex(16))

    async def __call__(self) -> BackfillRun:
        if await self.progress.done():
            return BackfillRun(True, 0, 0)
        position = await self.progress.take(self.holder, self.lease)
        if position is None:
            return BackfillRun(await self.progress.done(), 0, 0)
        added = steps = 0
        while True:
            step, following = await self.check.schedule_page(position, self.page)
            added, steps = added + step, steps + 1
            if following is None:
                await self.progress.finish(self.holder)
                return BackfillRun(True, added, steps)
            if not await self.progress.advance(self.holder, following, self.lease):
                log.info("health schedule backfill handed over to another instance after %d step(s)", steps)
                return BackfillRun(False, added, steps)
            position = following
            await asyncio.sleep(self.pause)
