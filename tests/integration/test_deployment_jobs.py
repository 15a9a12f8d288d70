"""Jobs that run once per deployment, on real servers sharing a Redis of the test's own: two instances
starting together run the job once between them, and a restart does not run it again."""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from dishka import Provider, Scope, decorate

from hermes.adapters.redis.account_health import CONVERSATIONS_RELISTED, ROUTES_UNBRACED
from hermes.adapters.redis.client import connect
from hermes.adapters.redis.conversations import RedisConversationStore
from hermes.application.ports.account_health import BackfillProgress
from hermes.domain.conversations import ConversationKey
from hermes.domain.platform import Platform
from hermes.entrypoints.deployment_jobs import JobProgress
from hermes.entrypoints.settings import Settings
from tests.contracts.conversations import T0, received
from tests.contracts.ports import uid
from tests.integration.own_redis import OwnRedis
from tests.integration.test_conversation_store_contract import as_old_form
from tests.integration.test_inbound_flows import eventually


class Counts:
    """What the jobs of every server of the test did, from any of their threads, by job key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.looked: Counter[str] = Counter()
        self.finished: Counter[str] = Counter()


class CountingProgress:
    def __init__(self, progress: BackfillProgress, key: str, counts: Counts) -> None:
        self._progress, self._key, self._counts = progress, key, counts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._progress, name)

    async def done(self) -> bool:
        finished = await self._progress.done()
        with self._counts.lock:
            self._counts.looked[self._key] += 1
        return finished

    async def finish(self, holder: str) -> None:
        await self._progress.finish(holder)
        with self._counts.lock:
            self._counts.finished[self._key] += 1


class Counting(Provider):
    scope = Scope.APP

    def __init__(self, counts: Counts) -> None:
        super().__init__()
        self._counts = counts

    @decorate
    def progress(self, progress: JobProgress) -> JobProgress:
        return JobProgress(lambda key: cast(BackfillProgress, CountingProgress(progress(key), key, self._counts)))


@pytest.fixture
async def redis(own_redis: OwnRedis) -> AsyncIterator[Any]:
    client = connect(own_redis.url)
    yield client
    await client.aclose()


def braced(number: str) -> str:
    return f"wa_phone_id:{{{number}}}"


async def test_braced_route_keys_move_once_per_deployment_not_at_every_start(
    settings: Settings, start_hermes: Any, own_redis: OwnRedis, redis: Any
) -> None:
    before, after = (str(secrets.randbelow(10**12) + 10**12) for _ in range(2))
    await redis.set(braced(before), "cust_old")
    shared = settings.model_copy(update={"redis_url": own_redis.url})
    counts = Counts()
    first, second = start_hermes(shared, None, Counting(counts)), start_hermes(shared, None, Counting(counts))

    async def both_looked() -> bool:
        return bool(await redis.exists(f"{ROUTES_UNBRACED}:done")) and counts.looked[ROUTES_UNBRACED] >= 2

    await eventually(both_looked, timeout=20)
    assert await redis.get(f"wa_phone_id:{before}") == b"cust_old"
    assert await redis.get(braced(before)) is None
    assert counts.finished[ROUTES_UNBRACED] == 1  # one of the two ran it

    first.stop()
    second.stop()
    # A key in the old spelling that appears now is not looked for: nothing walks the keyspace again.
    await redis.set(braced(after), "cust_late")
    again = Counts()
    start_hermes(shared, None, Counting(again))

    async def looked() -> bool:
        return again.looked[ROUTES_UNBRACED] > 0

    await eventually(looked, timeout=20)
    assert again.finished[ROUTES_UNBRACED] == 0
    assert await redis.get(braced(after)) == b"cust_late"
    assert await redis.get(f"wa_phone_id:{after}") is None


async def test_conversation_lists_in_their_first_form_are_rewritten_once(
    settings: Settings, start_hermes: Any, own_redis: OwnRedis, redis: Any
) -> None:
    """Lists kept as ids (with the heads packed aside) are rewritten as entries by one of two starting instances."""
    store = RedisConversationStore(redis)
    cust = uid()
    p = f"conv:{{{cust}}}"
    keys = [ConversationKey(cust, Platform.WHATSAPP, f"1555{i}") for i in range(3)]
    await store.record(cust, [received(k, i) for i, k in enumerate(keys)], T0)
    listed, _ = await store.recent(cust, platform=None, account=None, unread_only=False, after=None, limit=10)
    await as_old_form(redis, cust)
    shared = settings.model_copy(update={"redis_url": own_redis.url})
    counts = Counts()
    first, second = start_hermes(shared, None, Counting(counts)), start_hermes(shared, None, Counting(counts))

    async def both_looked() -> bool:
        return bool(await redis.exists(f"{CONVERSATIONS_RELISTED}:done")) and counts.looked[CONVERSATIONS_RELISTED] >= 2

    await eventually(both_looked, timeout=20)
    first.stop()
    second.stop()
    assert counts.finished[CONVERSATIONS_RELISTED] == 1
    assert not await redis.exists(f"{p}:recent", f"{p}:heads")
    now, _ = await store.recent(cust, platform=None, account=None, unread_only=False, after=None, limit=10)
    assert now == listed and len(now) == 3
