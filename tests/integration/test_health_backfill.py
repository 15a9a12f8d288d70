"""The health schedule's backfill on real servers sharing a Redis of the test's own: two instances starting
together walk the stored credentials once between them, and a restart does not walk them again."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from dishka import Provider, Scope, decorate

from hermes.adapters.redis.account_health import BACKFILL, KEY
from hermes.adapters.redis.client import connect
from hermes.adapters.redis.credential_store import RedisCredentialStore
from hermes.application.ports.account_health import BackfillProgress
from hermes.application.ports.credentials import AccountsPage, CredentialStore
from hermes.domain.account_health import AccountRef
from hermes.domain.platform import Platform
from hermes.entrypoints.settings import Settings
from tests.contracts.ports import uid
from tests.integration.own_redis import OwnRedis
from tests.integration.test_inbound_flows import eventually

ACCOUNTS = 1200  # several SCAN steps of 500


class Counts:
    """What every server of the test did, from any of their threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.steps: list[str] = []
        self.listed: list[tuple[str, Platform, str]] = []
        self.done_checks = 0


class CountingStore:
    def __init__(self, store: CredentialStore, counts: Counts) -> None:
        self._store = store
        self._counts = counts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def page(self, position: str, size: int) -> AccountsPage:
        page = await self._store.page(position, size)
        with self._counts.lock:
            self._counts.steps.append(position)
            self._counts.listed += page.accounts
        return page


class CountingProgress:
    def __init__(self, progress: BackfillProgress, counts: Counts) -> None:
        self._progress = progress
        self._counts = counts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._progress, name)

    async def done(self) -> bool:
        finished = await self._progress.done()
        with self._counts.lock:
            self._counts.done_checks += 1
        return finished


class Counting(Provider):
    scope = Scope.APP

    def __init__(self, counts: Counts) -> None:
        super().__init__()
        self._counts = counts

    @decorate
    def store(self, store: CredentialStore) -> CredentialStore:
        return cast(CredentialStore, CountingStore(store, self._counts))

    @decorate
    def progress(self, progress: BackfillProgress) -> BackfillProgress:
        return cast(BackfillProgress, CountingProgress(progress, self._counts))


@pytest.fixture
async def stored(own_redis: OwnRedis) -> AsyncIterator[tuple[Any, list[AccountRef]]]:
    """Accounts stored before checks existed: credentials without a turn in the schedule."""
    redis = connect(own_redis.url)
    store = RedisCredentialStore(redis)
    refs = [AccountRef(uid(), Platform.TELEGRAM, "default") for _ in range(ACCOUNTS)]
    for ref in refs:
        await store.put(ref.customer_id, ref.platform, b"envelope", ref.account)
    yield redis, refs
    await redis.aclose()


async def test_two_instances_starting_together_backfill_once_and_a_restart_walks_nothing(
    settings: Settings, start_hermes: Any, own_redis: OwnRedis, stored: tuple[Any, list[AccountRef]]
) -> None:
    redis, refs = stored
    quick = settings.model_copy(update={"redis_url": own_redis.url, "health_check_poll_seconds": 0.2})
    counts = Counts()
    first, second = start_hermes(quick, None, Counting(counts)), start_hermes(quick, None, Counting(counts))

    async def finished() -> bool:
        return bool(await redis.exists(f"{BACKFILL}:done"))

    async def both_looked() -> bool:
        return await finished() and counts.done_checks >= 2

    await eventually(both_looked, timeout=60)
    scheduled = await redis.zmscore(KEY, [ref.key() for ref in refs])
    assert all(score is not None for score in scheduled)
    # One walk between the two: each account listed once, as many steps as one walk alone takes.
    assert sorted(counts.listed) == sorted((r.customer_id, r.platform, r.account) for r in refs)
    alone, position = 0, ""
    while position is not None:
        position = (await RedisCredentialStore(redis).page(position, 500)).next
        alone += 1
    assert len(counts.steps) == alone > 1
    assert not await redis.exists(f"{BACKFILL}:position", f"{BACKFILL}:lease")

    first.stop()
    second.stop()
    again = Counts()
    start_hermes(quick, None, Counting(again))

    async def looked() -> bool:
        return again.done_checks > 0

    await eventually(looked, timeout=20)
    assert again.steps == []
