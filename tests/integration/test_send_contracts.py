"""The send guards' store contracts on Redis, MariaDB and SQLite (embedded mode), and the Redis keys they leave."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from redis import Redis as SyncRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.redis.sends import RedisIdempotencyKeys, RedisPendingSends, RedisPolicyStore, RedisRecipientLedger
from hermes.adapters.sql.sends import SqlIdempotencyKeys, SqlPendingSends, SqlPolicyStore, SqlRecipientLedger
from hermes.domain.sends import IdempotencyRecord
from tests.contracts.sends import (
    WHEN,
    IdempotencyKeysContract,
    PendingSendsContract,
    PolicyStoreContract,
    RecipientLedgerContract,
    a_customer,
)


class TestRedisPolicyStore(PolicyStoreContract):
    @pytest.fixture
    def policy_store(self, redis: Any) -> RedisPolicyStore:
        return RedisPolicyStore(redis)


class TestSqlPolicyStore(PolicyStoreContract):
    @pytest.fixture
    def policy_store(self, engine: AsyncEngine) -> SqlPolicyStore:
        return SqlPolicyStore(engine)


class TestRedisIdempotencyKeys(IdempotencyKeysContract):
    @pytest.fixture
    def idempotency_keys(self, redis: Any) -> RedisIdempotencyKeys:
        return RedisIdempotencyKeys(redis)

    async def test_the_key_is_hash_tagged_and_lives_a_day(
        self, idempotency_keys: RedisIdempotencyKeys, redis_client: SyncRedis
    ) -> None:
        customer, digest = a_customer(), secrets.token_hex(32)
        await idempotency_keys.claim(customer, digest, IdempotencyRecord("fp", WHEN), 86400)
        assert 86000 < redis_client.ttl(f"idem:{{{customer}}}:{digest}") <= 86400


class TestSqlIdempotencyKeys(IdempotencyKeysContract):
    @pytest.fixture
    def idempotency_keys(self, engine: AsyncEngine) -> SqlIdempotencyKeys:
        return SqlIdempotencyKeys(engine)


class TestRedisRecipientLedger(RecipientLedgerContract):
    @pytest.fixture
    def recipient_ledger(self, redis: Any) -> RedisRecipientLedger:
        return RedisRecipientLedger(redis)


class TestSqlRecipientLedger(RecipientLedgerContract):
    @pytest.fixture
    def recipient_ledger(self, engine: AsyncEngine) -> SqlRecipientLedger:
        return SqlRecipientLedger(engine)


class TestRedisPendingSends(PendingSendsContract):
    @pytest.fixture
    def pending_sends(self, redis: Any) -> RedisPendingSends:
        return RedisPendingSends(redis)


class TestSqlPendingSends(PendingSendsContract):
    @pytest.fixture
    def pending_sends(self, engine: AsyncEngine) -> SqlPendingSends:
        return SqlPendingSends(engine)
