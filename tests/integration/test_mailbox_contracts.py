"""The `Mailboxes` contract on Redis (single and Cluster), MariaDB and SQLite (embedded mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.redis.client import connect
from hermes.adapters.redis.mailboxes import RedisMailboxes
from hermes.adapters.sql.mailboxes import SqlMailboxes
from tests.contracts.mailboxes import MailboxesContract
from tests.integration.redis_cluster import RedisClusterProcess, cluster_available

pytestmark = pytest.mark.integration


class TestRedisMailboxes(MailboxesContract):
    @pytest.fixture
    def mailboxes(self, redis: Any) -> RedisMailboxes:
        return RedisMailboxes(redis)


class TestSqlMailboxes(MailboxesContract):
    @pytest.fixture
    def mailboxes(self, engine: AsyncEngine) -> SqlMailboxes:
        return SqlMailboxes(engine)


class TestClusterMailboxes(MailboxesContract):
    pytestmark = [
        pytest.mark.cluster,
        pytest.mark.skipif(not cluster_available(), reason="redis-server/redis-cli not installed"),
    ]

    @pytest.fixture
    async def mailboxes(self, cluster: RedisClusterProcess) -> AsyncIterator[RedisMailboxes]:
        client = connect(cluster.url, cluster=True)
        yield RedisMailboxes(client)
        await client.aclose()
