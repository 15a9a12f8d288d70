"""The ConversationStore contract on Redis, MariaDB and SQLite."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.redis.conversations import RedisConversationStore
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


async def test_heads_written_before_their_list_blob_are_listed(redis: Any) -> None:
    """Heads stored before the list kept a packed copy of each (only their fields) are listed all the same, and
    packed on the way."""
    store = RedisConversationStore(redis)
    cust = uid()
    keys = [ConversationKey(cust, Platform.WHATSAPP, f"1555{i}") for i in range(3)]
    await store.record(cust, [received(k, i) for i, k in enumerate(keys)], T0)
    before, _ = await store.recent(cust, platform=None, account=None, unread_only=False, after=None, limit=10)
    await redis.delete(f"conv:{{{cust}}}:heads")

    after, _ = await store.recent(cust, platform=None, account=None, unread_only=False, after=None, limit=10)

    assert after == before
    assert [c.peer for c in after] == ["15552", "15551", "15550"]
    assert sorted(await redis.hkeys(f"conv:{{{cust}}}:heads")) == sorted(k.id.encode() for k in keys)
    # A head whose key expired (idle 90 days) while the list lived on is not listed.
    await redis.delete(f"conv:{{{cust}}}:h:{keys[2].id}")
    left, _ = await store.recent(cust, platform=None, account=None, unread_only=False, after=None, limit=10)
    assert [c.peer for c in left] == ["15551", "15550"]


class TestSqlConversationStore(ConversationStoreContract):
    @pytest.fixture
    def conversations(self, engine: AsyncEngine) -> SqlConversationStore:
        return SqlConversationStore(engine)
