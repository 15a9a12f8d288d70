"""The `Mailboxes` contract on Redis (single and Cluster), MariaDB and SQLite (embedded mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.redis.client import connect
from hermes.adapters.redis.mailboxes import REGISTRY_KEY, RedisMailboxes
from hermes.adapters.sql.mailboxes import SqlMailboxes
from hermes.application.ports.mailboxes import MailboxState, PolledAccount
from tests.contracts.mailboxes import MailboxesContract, account
from tests.integration.redis_cluster import RedisClusterProcess, cluster_available

pytestmark = pytest.mark.integration


class TestRedisMailboxes(MailboxesContract):
    @pytest.fixture
    def mailboxes(self, redis: Any) -> RedisMailboxes:
        return RedisMailboxes(redis)

    async def test_registrations_written_before_accounts_had_names_are_the_default_account(
        self, mailboxes: RedisMailboxes, aio_redis: Any
    ) -> None:
        old = account()
        await aio_redis.sadd(REGISTRY_KEY, old.customer_id)  # what an earlier version wrote
        await aio_redis.hset(f"mailbox:{{{old.customer_id}}}", mapping={"v": 7, "u": 41, "f": 0})
        try:
            assert PolledAccount(old.customer_id) in await mailboxes.members()
            assert await mailboxes.state(PolledAccount(old.customer_id)) == MailboxState(7, 41, 0)
            work = PolledAccount(old.customer_id, "work")
            await mailboxes.add(work)
            assert await aio_redis.sismember(REGISTRY_KEY, f"{old.customer_id}/work")
            assert await mailboxes.state(PolledAccount(old.customer_id)) == MailboxState(7, 41, 0)
        finally:
            await mailboxes.remove(PolledAccount(old.customer_id))
            await mailboxes.remove(PolledAccount(old.customer_id, "work"))


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
