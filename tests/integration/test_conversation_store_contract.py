"""The ConversationStore contract on Redis, MariaDB and SQLite."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.redis.conversations import ID_LENGTH, RedisConversationStore
from hermes.adapters.sql.conversations import SqlConversationStore
from hermes.domain.conversations import ConversationKey
from hermes.domain.platform import Platform
from tests.contracts.conversations import T0, ConversationStoreContract, received
from tests.contracts.ports import uid


class TestRedisConversationStore(ConversationStoreContract):
    @pytest.fixture
    def conversations(self, redis: Any) -> RedisConversationStore:
        return RedisConversationStore(redis)


class TestRedisConversationStoreShortPages(ConversationStoreContract):
    """Each page looks at only three list entries: a page that runs out of them still pages on to every match."""

    @pytest.fixture
    def conversations(self, redis: Any) -> RedisConversationStore:
        store = RedisConversationStore(redis)
        store.page_budget = 3
        return store


async def as_old_form(redis: Any, customer_id: str) -> None:
    """Rewrite the customer's list as the version before entries kept it: ids, with the heads packed aside."""
    p = f"conv:{{{customer_id}}}"
    for entry, score in await redis.zrange(f"{p}:list", 0, -1, withscores=True):
        conv = entry[:ID_LENGTH]
        await redis.zadd(f"{p}:recent", {conv: score})
        await redis.hset(f"{p}:heads", conv, entry[ID_LENGTH:])
    await redis.delete(f"{p}:list")


async def test_lists_kept_in_the_old_form_are_rewritten_once(redis: Any) -> None:
    """A list kept as ids, with the heads packed aside, is rewritten as entries: the same page as before, the
    old keys gone, a head whose key expired left out; a second run finds nothing to do."""
    store = RedisConversationStore(redis)
    cust = uid()
    p = f"conv:{{{cust}}}"
    keys = [ConversationKey(cust, Platform.WHATSAPP, f"1555{i}") for i in range(3)]
    await store.record(cust, [received(k, i) for i, k in enumerate(keys)], T0)
    before, _ = await store.recent(cust, platform=None, account=None, unread_only=False, after=None, limit=10)
    await as_old_form(redis, cust)
    assert await store.recent(cust, platform=None, account=None, unread_only=False, after=None, limit=10) == ([], None)

    assert await store.relist_all() >= 3

    after, _ = await store.recent(cust, platform=None, account=None, unread_only=False, after=None, limit=10)
    assert after == before
    assert [c.peer for c in after] == ["15552", "15551", "15550"]
    assert not await redis.exists(f"{p}:recent", f"{p}:heads")
    assert await store.relist(cust) == 0
    # A head whose key expired while the old list lived on is not carried over.
    await redis.delete(f"{p}:list")
    await redis.zadd(f"{p}:recent", {k.id: 1 for k in keys})
    await redis.delete(f"{p}:h:{keys[2].id}")
    assert await store.relist(cust, batch=2) == 2
    left, _ = await store.recent(cust, platform=None, account=None, unread_only=False, after=None, limit=10)
    assert [c.peer for c in left] == ["15551", "15550"]


async def test_a_write_moves_what_an_older_instance_still_wrote_in_the_old_form(redis: Any) -> None:
    """During a rolling upgrade an older instance writes the old form after the one-time rewrite: the customer's
    next message moves it, and the list shows every conversation again."""
    store = RedisConversationStore(redis)
    cust = uid()
    p = f"conv:{{{cust}}}"
    keys = [ConversationKey(cust, Platform.WHATSAPP, f"1555{i}") for i in range(3)]
    await store.record(cust, [received(k, i) for i, k in enumerate(keys)], T0)
    version = await redis.get(f"{p}:v")
    old = keys[1].id
    for entry, score in await redis.zrangebyscore(f"{p}:list", "-inf", "+inf", withscores=True):
        if entry[:ID_LENGTH].decode() == old:  # as the older instance keeps it
            await redis.zrem(f"{p}:list", entry)
            await redis.zadd(f"{p}:recent", {old: score})
            await redis.hset(f"{p}:heads", old, entry[ID_LENGTH:])
    missing, _ = await store.recent(cust, platform=None, account=None, unread_only=False, after=None, limit=10)
    assert [c.peer for c in missing] == ["15552", "15550"]

    await store.record(cust, [received(keys[0], 7)], T0)

    listed, _ = await store.recent(cust, platform=None, account=None, unread_only=False, after=None, limit=10)
    assert sorted(c.peer for c in listed) == ["15550", "15551", "15552"]
    assert not await redis.exists(f"{p}:recent", f"{p}:heads")
    assert await redis.get(f"{p}:v") != version


class TestSqlConversationStore(ConversationStoreContract):
    @pytest.fixture
    def conversations(self, engine: AsyncEngine) -> SqlConversationStore:
        return SqlConversationStore(engine)
