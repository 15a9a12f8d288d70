"""The schedule's backfill: once per deployment, one instance at a time, taken up where a dead one stopped,
in bounded steps; and the background job that runs it until it is done."""

from __future__ import annotations

import asyncio

import pytest

from hermes.adapters.memory.account_health import InMemoryAccountSchedule, InMemoryBackfillProgress
from hermes.adapters.memory.inbound import InMemoryInbox
from hermes.adapters.memory.managed_oauth import InMemoryAccountStatuses
from hermes.adapters.memory.stores import InMemoryCredentialStore
from hermes.application.account_health import AccountHealthRecorder
from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.credentials import AccountsPage
from hermes.application.use_cases.check_account_health import CheckAccountHealth
from hermes.application.use_cases.once_per_deployment import OncePerDeployment
from hermes.domain.account_health import AccountRef
from hermes.domain.errors import Unavailable
from hermes.domain.platform import Platform
from hermes.entrypoints.account_health import ScheduleBackfiller
from tests.unit.conftest import World
from tests.unit.test_account_health import Told

ACCOUNTS = 1000


class CountingStore(InMemoryCredentialStore):
    """Counts the steps of walks through it; `fail_after` makes it fail like a store that went away."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[str] = []
        self.listed: list[tuple[str, Platform, str]] = []
        self.fail_after: int | None = None

    async def page(self, position: str, size: int) -> AccountsPage:
        if self.fail_after is not None and len(self.steps) >= self.fail_after:
            raise Unavailable("the data store is unavailable")
        self.steps.append(position)
        page = await super().page(position, size)
        self.listed += page.accounts
        assert len(page.accounts) <= size
        return page


async def stored(
    world: World, count: int = ACCOUNTS
) -> tuple[CountingStore, InMemoryAccountSchedule, CheckAccountHealth]:
    store = CountingStore()
    vault = CredentialVault(world.cipher, store)
    for i in range(count):
        await vault.save(f"c{i:04}", Platform.TELEGRAM, {"botToken": f"t{i}"})
    schedule = InMemoryAccountSchedule()
    health = AccountHealthRecorder(InMemoryAccountStatuses(), InMemoryInbox(), Told(), world.clock, schedule)
    return store, schedule, CheckAccountHealth(vault, world.verifier, schedule, health, world.clock)


def instance(check: CheckAccountHealth, progress: InMemoryBackfillProgress, **options: float) -> OncePerDeployment:
    return OncePerDeployment(check.schedule_page, progress, page=100, pause=0.0, **options)  # type: ignore[arg-type]


async def test_the_backfill_gives_every_account_a_turn_once_and_a_later_start_walks_nothing(world: World) -> None:
    store, schedule, check = await stored(world)
    progress = InMemoryBackfillProgress()
    first = await instance(check, progress)()
    assert (first.done, first.added, first.steps) == (True, ACCOUNTS, 11)  # 10 full pages, then the end
    assert await schedule.size() == ACCOUNTS
    later = await instance(check, progress)()
    assert (later.done, later.added, later.steps) == (True, 0, 0)
    assert len(store.steps) == 11


async def test_two_instances_starting_together_walk_the_store_once(world: World) -> None:
    store, schedule, check = await stored(world)
    progress = InMemoryBackfillProgress()
    a, b = instance(check, progress), instance(check, progress)
    ran = await asyncio.gather(a(), b())
    assert sorted(r.steps for r in ran) == [0, 11]
    assert sorted(r.added for r in ran) == [0, ACCOUNTS]
    assert len(store.listed) == ACCOUNTS == len(set(store.listed))  # no account was listed twice
    assert await schedule.size() == ACCOUNTS
    assert (await b()).done and (await a()).done  # the one that found it busy learns it is done


async def test_an_instance_that_stops_half_way_leaves_the_rest_to_the_next(world: World) -> None:
    store, schedule, check = await stored(world)
    progress = InMemoryBackfillProgress()
    store.fail_after = 4
    dying = instance(check, progress, lease=0.05)
    with pytest.raises(Unavailable):
        await dying()
    assert await schedule.size() == 400
    busy = await instance(check, progress)()
    assert (busy.done, busy.steps) == (False, 0)  # the dead holder's lease still holds
    await asyncio.sleep(0.06)
    store.fail_after = None
    rest = await instance(check, progress)()
    assert (rest.done, rest.added, rest.steps) == (True, ACCOUNTS - 400, 7)  # from where the first stopped
    assert store.steps[4] != ""  # taken up at the recorded position, not from the start
    assert len(store.listed) == ACCOUNTS and await schedule.size() == ACCOUNTS


async def test_an_instance_that_lost_its_lease_stops_at_once(world: World) -> None:
    _, _, check = await stored(world, 300)
    progress = InMemoryBackfillProgress()

    class Stolen(InMemoryBackfillProgress):
        async def advance(self, holder: str, position: str, lease: float) -> bool:
            return False

    ran = await instance(check, Stolen())()
    assert (ran.done, ran.steps) == (False, 1)
    assert (await instance(check, progress)()).done


async def test_accounts_already_scheduled_keep_their_turn(world: World) -> None:
    _, schedule, check = await stored(world, 3)
    kept = AccountRef("c0001", Platform.TELEGRAM, "default")
    await schedule.set(kept, 123.0)
    ran = await instance(check, InMemoryBackfillProgress())()
    assert ran.added == 2 and schedule.due[kept] == 123.0


async def test_the_background_job_waits_for_a_busy_backfill_takes_over_a_dead_one_and_ends(world: World) -> None:
    store, schedule, check = await stored(world, 250)
    progress = InMemoryBackfillProgress()
    assert await progress.take("an instance that died", lease=0.2) == ""
    job = ScheduleBackfiller(instance(check, progress, lease=0.1), 0.0, "scheduled %d")
    await asyncio.wait_for(job.run(), timeout=5)  # returns once done
    assert await progress.done() and await schedule.size() == 250 and len(store.steps) == 3
