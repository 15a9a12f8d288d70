"""Contracts of the account health ports: the check schedule and its one-time backfill."""

from __future__ import annotations

import asyncio

from hermes.application.ports.account_health import BackfillProgress, HealthSchedule
from hermes.domain.account_health import AccountRef
from hermes.domain.platform import Platform
from tests.contracts.ports import uid


class HealthScheduleContract:
    async def test_a_claim_takes_only_what_is_due_and_leases_it(self, health_schedule: HealthSchedule) -> None:
        a, b = AccountRef(uid(), Platform.TELEGRAM, "default"), AccountRef(uid(), Platform.EMAIL, "work")
        assert await health_schedule.add({a: 10.0, b: 20.0}) == 2
        assert await health_schedule.add({a: 500.0, b: 1.0}) == 0  # existing turns are kept
        assert await health_schedule.claim(15.0, 10, lease=60.0) == [a]
        assert await health_schedule.claim(15.0, 10, lease=60.0) == []  # leased: no second claimant
        assert await health_schedule.claim(75.0, 10, lease=60.0) == [b, a]  # the lease ran out: claimed again
        await health_schedule.remove(b)
        await health_schedule.set(a, 1000.0)
        assert await health_schedule.claim(999.0, 10, lease=60.0) == []
        assert await health_schedule.claim(1000.0, 10, lease=60.0) == [a]
        assert await health_schedule.size() == 1

    async def test_adding_counts_only_the_new_accounts(self, health_schedule: HealthSchedule) -> None:
        old, new = AccountRef(uid(), Platform.DISCORD, "default"), AccountRef(uid(), Platform.DISCORD, "shop")
        assert await health_schedule.add({}) == 0
        assert await health_schedule.add({old: 5.0}) == 1
        assert await health_schedule.add({old: 1.0, new: 7.0}) == 1
        assert await health_schedule.claim(6.0, 10, lease=60.0) == [old]  # its first time stayed


class BackfillProgressContract:
    async def test_one_holder_at_a_time_and_the_position_moves_only_under_the_lease(
        self, backfill_progress: BackfillProgress
    ) -> None:
        assert not await backfill_progress.done()
        assert await backfill_progress.take("a", lease=30) == ""
        assert await backfill_progress.take("b", lease=30) is None  # held by a
        assert await backfill_progress.take("a", lease=30) == ""  # its holder may take it again
        assert await backfill_progress.advance("a", "step-1", lease=30)
        assert not await backfill_progress.advance("b", "elsewhere", lease=30)
        await backfill_progress.finish("a")
        assert await backfill_progress.done()
        assert await backfill_progress.take("b", lease=30) is None  # done for good
        assert await backfill_progress.take("a", lease=30) is None

    async def test_a_lapsed_lease_lets_another_holder_continue_where_it_stopped(
        self, backfill_progress: BackfillProgress
    ) -> None:
        assert await backfill_progress.take("dies", lease=0.2) == ""
        assert await backfill_progress.advance("dies", "half-way", lease=0.2)
        assert await backfill_progress.take("next", lease=30) is None
        await asyncio.sleep(0.3)
        assert await backfill_progress.take("next", lease=30) == "half-way"
        assert not await backfill_progress.advance("dies", "stale", lease=30)  # the old holder cannot move it back
        assert await backfill_progress.advance("next", "further", lease=30)
        await backfill_progress.finish("dies")  # a holder that reached the end finishes even after losing the lease
        assert await backfill_progress.done()
        assert await backfill_progress.take("next", lease=30) is None
