"""The inbound port contracts against the real adapters: Redis, MariaDB and SQLite (embedded mode)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.redis.callback_store import RedisCallbackStore
from hermes.adapters.redis.inbound_queue import RedisInboundQueue
from hermes.adapters.redis.inbox import RedisInbox, inbox_key
from hermes.adapters.redis.unrouted_numbers import RedisUnroutedNumbers
from hermes.adapters.sql.inbound import SqlCallbackStore, SqlInboundQueue, SqlInbox, SqlUnroutedNumbers
from hermes.domain.platform import Platform
from tests.contracts.inbound import (
    MAX_DELIVERIES,
    RECLAIM,
    T0,
    CallbackStoreContract,
    InboundQueueContract,
    InboxContract,
    UnroutedNumbersContract,
    message,
)
from tests.contracts.ports import uid


def queue_name() -> str:
    return "test-" + secrets.token_hex(4)


class TestRedisInboundQueue(InboundQueueContract):
    @pytest.fixture
    async def inbound_queue(self, redis: Any) -> AsyncIterator[RedisInboundQueue]:
        queue = RedisInboundQueue(redis, name=queue_name(), reclaim_after=RECLAIM, max_deliveries=MAX_DELIVERIES)
        yield queue
        await redis.delete(queue.stream, queue.dead, queue.errors)

    async def test_consumers_of_dead_instances_are_forgotten_once_they_hold_nothing(self, redis: Any) -> None:
        queue = RedisInboundQueue(redis, name=queue_name(), reclaim_after=60, forget_consumers_after=0.2)
        try:
            for _ in range(3):
                await queue.put(Platform.WHATSAPP, b"{}")
            held = await queue.take("dead-holding", 1, 0.1)  # died holding an event
            done = await queue.take("dead-empty", 1, 0.1)  # routed its event, then died
            await queue.ack([e.id for e in done])
            alive = await queue.take("alive", 1, 0.1)
            assert (len(held), len(done), len(alive)) == (1, 1, 1)
            await asyncio.sleep(0.3)

            assert await queue.forget_idle_consumers("alive") == 1

            names = {c["name"].decode() for c in await redis.xinfo_consumers(queue.stream, "hermes")}
            assert names == {"dead-holding", "alive"}  # the held event still has its consumer
        finally:
            await redis.delete(queue.stream, queue.dead, queue.errors)

    async def test_group_lost_with_a_restart_is_made_again(self, redis: Any) -> None:
        queue = RedisInboundQueue(redis, name=queue_name(), reclaim_after=RECLAIM)
        first = await queue.put(Platform.WHATSAPP, b"{}")
        assert [e.id for e in await queue.take("a", 5, 0.5)] == [first]
        await redis.delete(queue.stream)  # what a Redis restart without persistence leaves
        second = await queue.put(Platform.WHATSAPP, b"{}")
        assert [e.id for e in await queue.take("a", 5, 0.5)] == [second]
        await redis.delete(queue.stream, queue.dead, queue.errors)


class TestSqlInboundQueue(InboundQueueContract):
    @pytest.fixture
    def inbound_queue(self, engine: AsyncEngine) -> SqlInboundQueue:
        return SqlInboundQueue(engine, name=queue_name(), reclaim_after=RECLAIM, max_deliveries=MAX_DELIVERIES)


class TestRedisInbox(InboxContract):
    @pytest.fixture
    def inbox(self, redis: Any) -> RedisInbox:
        return RedisInbox(redis)

    async def test_kept_90_days_and_marks_8_days(self, redis: Any) -> None:
        cust = uid()
        m = message()
        await RedisInbox(redis).append(cust, [m], T0)
        assert 7775990 <= await redis.ttl(inbox_key(cust)) <= 7776000
        assert 8 * 86400 - 10 <= await redis.ttl(f"{inbox_key(cust)}:seen:{m.dedupe_key}") <= 8 * 86400


class TestSqlInbox(InboxContract):
    @pytest.fixture
    def inbox(self, engine: AsyncEngine) -> SqlInbox:
        return SqlInbox(engine)


class TestRedisUnroutedNumbers(UnroutedNumbersContract):
    @pytest.fixture
    def unrouted_numbers(self, redis: Any) -> RedisUnroutedNumbers:
        return RedisUnroutedNumbers(redis)


class TestSqlUnroutedNumbers(UnroutedNumbersContract):
    @pytest.fixture
    def unrouted_numbers(self, engine: AsyncEngine) -> SqlUnroutedNumbers:
        return SqlUnroutedNumbers(engine)


class TestRedisCallbackStore(CallbackStoreContract):
    @pytest.fixture
    def callback_store(self, redis: Any) -> RedisCallbackStore:
        return RedisCallbackStore(redis)


class TestSqlCallbackStore(CallbackStoreContract):
    @pytest.fixture
    def callback_store(self, engine: AsyncEngine) -> SqlCallbackStore:
        return SqlCallbackStore(engine)
