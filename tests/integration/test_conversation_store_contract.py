"""The ConversationStore contract on Redis, MariaDB and SQLite."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.redis.conversations import RedisConversationStore
from hermes.adapters.sql.conversations import SqlConversationStore
from tests.contracts.conversations import ConversationStoreContract


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


class TestSqlConversationStore(ConversationStoreContract):
    @pytest.fixture
    def conversations(self, engine: AsyncEngine) -> SqlConversationStore:
        return SqlConversationStore(engine)
